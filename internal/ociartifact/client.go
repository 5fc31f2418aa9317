package ociartifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lacre/lacre/internal/artifact"
)

// Default bounds on what is read from a registry.
const (
	DefaultMaxLayerSize    = 256 << 20 // the compressed layer
	DefaultMaxManifestSize = 4 << 20   // the OCI distribution spec's advice
)

// ErrDigestMismatch is returned when a pulled layer does not match the
// digest its manifest gives.
var ErrDigestMismatch = errors.New("layer digest mismatch: the artifact was modified or corrupted")

// Options configure a Client.
type Options struct {
	// Auth, when set, is used for every registry (flux's --creds).
	Auth authn.Authenticator
	// Keychain finds credentials per registry (a docker config.json,
	// see DockerConfig) when Auth is nil; nil means anonymous.
	Keychain authn.Keychain
	// Transport is the base HTTP transport; nil is go-containerregistry's
	// default. Every response body read through it is bounded.
	Transport http.RoundTripper
	// Insecure allows plain HTTP and skips TLS verification with the
	// default transport (flux's --insecure-registry).
	Insecure bool
	// UserAgent is sent with every request.
	UserAgent string
	// MaxLayerSize bounds the compressed layer (0: DefaultMaxLayerSize);
	// Limits bound its content once unpacked.
	MaxLayerSize int64
	Limits       artifact.Limits
}

// Client pushes, pulls, tags and lists Flux artifacts.
type Client struct{ o Options }

// New returns a Client.
func New(o Options) *Client {
	if o.MaxLayerSize == 0 {
		o.MaxLayerSize = DefaultMaxLayerSize
	}
	return &Client{o: o}
}

// remote returns the go-containerregistry options of one operation.
func (c *Client) remote(ctx context.Context) []remote.Option {
	base := c.o.Transport
	if base == nil {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		if c.o.Insecure {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure-registry asks for it
		}
		base = t
	}
	// Manifests, tag lists and tokens are small; the layer is bounded
	// again by its declared size.
	bound := c.o.MaxLayerSize + DefaultMaxManifestSize
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(boundedTransport{base, bound})}
	if c.o.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(c.o.UserAgent))
	}
	switch {
	case c.o.Auth != nil:
		opts = append(opts, remote.WithAuth(c.o.Auth))
	case c.o.Keychain != nil:
		opts = append(opts, remote.WithAuthFromKeychain(c.o.Keychain))
	}
	return opts
}

// Push uploads img to ref and returns its digest reference
// ("host/repo@sha256:...").
func (c *Client) Push(ctx context.Context, ref name.Reference, img v1.Image) (string, error) {
	if err := remote.Write(ref, img, c.remote(ctx)...); err != nil {
		return "", fmt.Errorf("pushing artifact failed: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return ref.Context().Digest(d.String()).String(), nil
}

// manifest fetches ref's manifest, bounded, and refuses what is not an
// image manifest.
func (c *Client) manifest(ctx context.Context, ref name.Reference) (*remote.Descriptor, *v1.Manifest, error) {
	desc, err := remote.Get(ref, c.remote(ctx)...)
	if err != nil {
		return nil, nil, err
	}
	if len(desc.Manifest) > DefaultMaxManifestSize {
		return nil, nil, fmt.Errorf("%s: manifest larger than %s", ref, artifact.FormatSize(DefaultMaxManifestSize))
	}
	if desc.MediaType != types.OCIManifestSchema1 && desc.MediaType != types.DockerManifestSchema2 {
		return nil, nil, fmt.Errorf("%s: media type %q is not an image manifest", ref, desc.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, nil, fmt.Errorf("parsing manifest failed: %w", err)
	}
	return desc, m, nil
}

// Pulled is a pulled artifact: its metadata and first layer, checked
// against the size and digest its manifest gives.
type Pulled struct {
	Metadata
	Layer     v1.Descriptor
	LayerData []byte
}

// Pull fetches ref's manifest and first layer. The layer is refused when
// larger than MaxLayerSize, or when its bytes do not match its size and
// digest (ErrDigestMismatch).
func (c *Client) Pull(ctx context.Context, ref name.Reference) (*Pulled, error) {
	desc, m, err := c.manifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	if len(m.Layers) == 0 {
		return nil, errors.New("no layers found in artifact")
	}
	ld := m.Layers[0]
	if ld.Size < 0 || ld.Size > c.o.MaxLayerSize {
		return nil, fmt.Errorf("%w: layer %s is %d bytes, more than %s", artifact.ErrTooLarge, ld.Digest, ld.Size, artifact.FormatSize(c.o.MaxLayerSize))
	}
	if ld.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("layer digest algorithm %q is not supported", ld.Digest.Algorithm)
	}
	l, err := remote.Layer(ref.Context().Digest(ld.Digest.String()), c.remote(ctx)...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetching layer %s: %w", ld.Digest, err)
	}
	defer rc.Close()
	data := make([]byte, ld.Size)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, fmt.Errorf("fetching layer %s: %w", ld.Digest, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ld.Digest.Hex {
		return nil, fmt.Errorf("%w: layer %s of %s", ErrDigestMismatch, ld.Digest, ref)
	}
	meta := metadataFrom(m.Annotations)
	meta.URL = ref.String()
	meta.Digest = ref.Context().Digest(desc.Digest.String()).String()
	return &Pulled{Metadata: meta, Layer: ld, LayerData: data}, nil
}

// Files unpacks the pulled layer in memory within the client's Limits.
func (c *Client) Files(p *Pulled) (artifact.Files, error) {
	return artifact.Extract(p.LayerData, c.o.Limits)
}

// Tag gives ref's manifest the tag newTag in the same repository and
// returns the new reference ("host/repo:newTag").
func (c *Client) Tag(ctx context.Context, ref name.Reference, newTag string) (string, error) {
	dst := ref.Context().Tag(newTag)
	if _, err := name.NewTag(dst.String()); err != nil {
		return "", fmt.Errorf("invalid tag %q: %w", newTag, err)
	}
	desc, err := remote.Get(ref, c.remote(ctx)...)
	if err != nil {
		return "", err
	}
	if err := remote.Tag(dst, desc, c.remote(ctx)...); err != nil {
		return "", err
	}
	return dst.Name(), nil
}

// ListOptions filter List.
type ListOptions struct {
	SemverFilter string // a semver range; tags that are no version are left out
	RegexFilter  string
	// IncludeCosignArtifacts keeps the .sig, .att and .sbom tags.
	IncludeCosignArtifacts bool
}

// List returns the metadata of repo's tags that pass the filters, tags in
// descending lexical order as flux lists them.
func (c *Client) List(ctx context.Context, repo name.Repository, o ListOptions) ([]Metadata, error) {
	var constraint *semver.Constraints
	var re *regexp.Regexp
	var err error
	if o.SemverFilter != "" {
		if constraint, err = semver.NewConstraint(o.SemverFilter); err != nil {
			return nil, fmt.Errorf("semver '%s' parse error: %w", o.SemverFilter, err)
		}
	}
	if o.RegexFilter != "" {
		if re, err = regexp.Compile(o.RegexFilter); err != nil {
			return nil, fmt.Errorf("regex '%s' parse error: %w", o.RegexFilter, err)
		}
	}
	tags, err := remote.List(repo, c.remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("listing tags failed: %w", err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(tags)))
	out := []Metadata{}
	for _, tag := range tags {
		if !o.IncludeCosignArtifacts && IsCosignArtifact(tag) {
			continue
		}
		if constraint != nil {
			if v, err := ParseVersion(tag); err != nil || !constraint.Check(v) {
				continue
			}
		}
		if re != nil && !re.MatchString(tag) {
			continue
		}
		ref := repo.Tag(tag)
		desc, m, err := c.manifest(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("fetching manifest failed: %w", err)
		}
		meta := metadataFrom(m.Annotations)
		meta.URL, meta.Digest = ref.String(), desc.Digest.String()
		out = append(out, meta)
	}
	return out, nil
}

// boundedTransport fails every response body read past max bytes.
type boundedTransport struct {
	base http.RoundTripper
	max  int64
}

func (b boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: b.max}
	return resp, nil
}

type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("%w: registry response longer than allowed", artifact.ErrTooLarge)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
