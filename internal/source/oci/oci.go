// Package oci owns the OCIRepository source's registry side: resolving
// spec.ref (digest, semver range with its filter, tag) to a manifest
// digest, pulling the selected layer with every byte bounded and charged
// to the controller's artifact budget, verifying the layer's digest, the
// registry credentials (dockerconfigjson), and cosign key verification.
// It reads no environment (no Docker config files, no cloud keychains).
package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lacre/lacre/internal/artifact"
)

// Errors callers classify.
var (
	// ErrInvalidURL: the URL is not oci://host/repository.
	ErrInvalidURL = errors.New("invalid OCI URL")
	// ErrInvalidRef: spec.ref cannot be used (bad semver range, filter,
	// digest).
	ErrInvalidRef = errors.New("invalid OCI reference")
	// ErrLayer: no layer to select, or the layer could not be processed.
	ErrLayer = errors.New("OCI layer operation failed")
	// ErrDigestMismatch: the layer's bytes do not have the digest the
	// manifest names.
	ErrDigestMismatch = errors.New("layer digest mismatch: the layer was modified or corrupted")
)

// maxTags bounds how many tags a semver resolution reads.
const maxTags = 100_000

// Ref is spec.ref: Digest wins over SemVer, SemVer over Tag; the default
// tag is latest.
type Ref struct {
	Digest, SemVer, SemverFilter, Tag string
}

// Options say where and how to reach the registry.
type Options struct {
	// Keychain resolves credentials (nil: anonymous).
	Keychain authn.Keychain
	// Transport carries the requests (TLS, proxy); nil: a default one.
	Transport http.RoundTripper
	// Insecure allows plain HTTP.
	Insecure bool
}

func (o Options) remote(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.NewMultiKeychain()
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	return opts
}

// Repository parses an oci:// URL.
func Repository(url string, insecure bool) (name.Repository, error) {
	rest, ok := strings.CutPrefix(url, "oci://")
	if !ok || rest == "" {
		return name.Repository{}, fmt.Errorf("%w: URL must be in format 'oci://<domain>/<org>/<repo>', got %q", ErrInvalidURL, url)
	}
	if strings.ContainsAny(rest, "@") || strings.Count(rest[strings.LastIndex(rest, "/")+1:], ":") > 0 {
		return name.Repository{}, fmt.Errorf("%w: URL must not contain a tag or digest, got %q", ErrInvalidURL, url)
	}
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(rest, nopts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	return repo, nil
}

// Resolve turns ref into a reference in repo and the revision as Flux
// writes it: "<tag>@sha256:<hex>" for a tag or semver, "sha256:<hex>" for
// a digest.
func Resolve(ctx context.Context, repo name.Repository, ref Ref, o Options) (name.Digest, string, error) {
	if ref.Digest != "" {
		if _, err := v1.NewHash(ref.Digest); err != nil {
			return name.Digest{}, "", fmt.Errorf("%w: digest %q: %v", ErrInvalidRef, ref.Digest, err)
		}
		return repo.Digest(ref.Digest), ref.Digest, nil
	}
	tag := ref.Tag
	if ref.SemVer != "" {
		t, err := newestMatching(ctx, repo, ref, o)
		if err != nil {
			return name.Digest{}, "", err
		}
		tag = t
	}
	if tag == "" {
		tag = name.DefaultTag
	}
	t := repo.Tag(tag)
	var h v1.Hash
	desc, err := remote.Head(t, o.remote(ctx)...)
	if err != nil {
		d, gerr := remote.Get(t, o.remote(ctx)...)
		if gerr != nil {
			return name.Digest{}, "", gerr
		}
		desc = &d.Descriptor
	}
	h = desc.Digest
	return repo.Digest(h.String()), tag + "@" + h.String(), nil
}

// newestMatching lists repo's tags and returns the highest version in
// ref.SemVer among those ref.SemverFilter keeps.
func newestMatching(ctx context.Context, repo name.Repository, ref Ref, o Options) (string, error) {
	c, err := semver.NewConstraint(ref.SemVer)
	if err != nil {
		return "", fmt.Errorf("%w: semver '%s' parse error: %v", ErrInvalidRef, ref.SemVer, err)
	}
	var filter *regexp.Regexp
	if ref.SemverFilter != "" {
		if filter, err = regexp.Compile(ref.SemverFilter); err != nil {
			return "", fmt.Errorf("%w: semverFilter %q: %v", ErrInvalidRef, ref.SemverFilter, err)
		}
	}
	tags, err := remote.List(repo, o.remote(ctx)...)
	if err != nil {
		return "", err
	}
	if len(tags) > maxTags {
		return "", fmt.Errorf("repository lists %d tags, more than %d", len(tags), maxTags)
	}
	var versions []*semver.Version
	for _, t := range tags {
		if filter != nil && !filter.MatchString(t) {
			continue
		}
		v, err := semver.NewVersion(t)
		if err != nil || !c.Check(v) {
			continue
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("no match found for semver: %s", ref.SemVer)
	}
	sort.Sort(sort.Reverse(semver.Collection(versions)))
	return versions[0].Original(), nil
}

// Layer is a pulled layer: its compressed bytes (digest verified) and
// the manifest's annotations.
type Layer struct {
	Data        []byte
	MediaType   string
	Annotations map[string]string
}

// Pull reads the manifest at ref and the first layer of mediaType (the
// first layer when mediaType is ""), at most lim.MaxTotalSize bytes,
// charging l as they arrive, and checks the layer's digest.
func Pull(ctx context.Context, ref name.Digest, mediaType string, o Options, lim artifact.Limits, l *artifact.Lease) (*Layer, error) {
	lim = lim.WithDefaults()
	img, err := remote.Image(ref, o.remote(ctx)...)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("failed to parse artifact manifest: %w", err)
	}
	if len(m.Layers) == 0 {
		return nil, fmt.Errorf("%w: no layers found in artifact", ErrLayer)
	}
	desc := m.Layers[0]
	if mediaType != "" {
		found := false
		for _, d := range m.Layers {
			if string(d.MediaType) == mediaType {
				desc, found = d, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: failed to find layer with media type '%s' in artifact", ErrLayer, mediaType)
		}
	}
	if desc.Size > lim.MaxTotalSize {
		return nil, fmt.Errorf("%w: layer of %d bytes, over %s", artifact.ErrTooLarge, desc.Size, artifact.FormatSize(lim.MaxTotalSize))
	}
	data, err := readBlob(ctx, ref.Context(), desc, o, lim.MaxTotalSize, l)
	if err != nil {
		return nil, err
	}
	return &Layer{Data: data, MediaType: string(desc.MediaType), Annotations: m.Annotations}, nil
}

// readBlob reads the blob desc names, bounded by max and charged to l,
// and verifies its sha256 digest.
func readBlob(ctx context.Context, repo name.Repository, desc v1.Descriptor, o Options, max int64, l *artifact.Lease) ([]byte, error) {
	if desc.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("%w: unsupported digest algorithm %q", ErrLayer, desc.Digest.Algorithm)
	}
	layer, err := remote.Layer(repo.Digest(desc.Digest.String()), o.remote(ctx)...)
	if err != nil {
		return nil, err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	data, err := io.ReadAll(io.TeeReader(artifact.ChargeReader(io.LimitReader(rc, max+1), l), h))
	if err != nil {
		if errors.Is(err, artifact.ErrBudget) {
			return nil, err
		}
		if strings.Contains(err.Error(), "error verifying") { // go-containerregistry's own check
			return nil, fmt.Errorf("%w: %v", ErrDigestMismatch, err)
		}
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: layer over %s", artifact.ErrTooLarge, artifact.FormatSize(max))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != desc.Digest.Hex {
		return nil, fmt.Errorf("%w: want %s, got sha256:%s", ErrDigestMismatch, desc.Digest, got)
	}
	return data, nil
}
