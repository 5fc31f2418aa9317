package oci

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// cosign's key-based signature scheme, as its documentation describes
// it: the signatures of the manifest sha256:<hex> are the layers of the
// image tagged sha256-<hex>.sig in the same repository; each layer is a
// "simple signing" JSON payload naming the signed manifest digest, and
// its annotation dev.cosignproject.cosign/signature holds the base64
// signature of the payload's bytes.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	// maxPayload bounds one signature payload; maxSignatures the layers
	// of a signature image.
	maxPayload    = 64 << 10
	maxSignatures = 64
)

// ErrNotVerified: no signature verified with the trusted keys.
var ErrNotVerified = errors.New("no matching signatures")

// SimpleSigning is cosign's payload.
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// SignatureTag is the tag of digest's signatures in repo.
func SignatureTag(repo name.Repository, digest string) name.Tag {
	return repo.Tag(strings.Replace(digest, ":", "-", 1) + ".sig")
}

// ParsePublicKeys reads the PEM public keys of a verification Secret's
// *.pub entries (ECDSA keys: cosign's default key type), in key order.
func ParsePublicKeys(data map[string][]byte) ([]*ecdsa.PublicKey, error) {
	names := make([]string, 0, len(data))
	for k := range data {
		if strings.HasSuffix(k, ".pub") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var out []*ecdsa.PublicKey
	for _, k := range names {
		blk, _ := pem.Decode(data[k])
		if blk == nil {
			return nil, fmt.Errorf("key %q: not PEM", k)
		}
		pk, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %q: %v", k, err)
		}
		ec, ok := pk.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("key %q: %T keys are not supported (ECDSA only)", k, pk)
		}
		out = append(out, ec)
	}
	if len(out) == 0 {
		return nil, errors.New("no public keys found (entries ending in .pub)")
	}
	return out, nil
}

// Verify checks that a signature of digest in repo's sha256-<hex>.sig
// image verifies with one of keys and names digest in its payload.
func Verify(ctx context.Context, repo name.Repository, digest string, keys []*ecdsa.PublicKey, o Options) error {
	img, err := remote.Image(SignatureTag(repo, digest), o.remote(ctx)...)
	if err != nil {
		return fmt.Errorf("%w: fetching signatures: %v", ErrNotVerified, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotVerified, err)
	}
	if len(m.Layers) > maxSignatures {
		return fmt.Errorf("%w: %d signatures, more than %d", ErrNotVerified, len(m.Layers), maxSignatures)
	}
	for _, d := range m.Layers {
		if d.MediaType != SimpleSigningMediaType || d.Size > maxPayload {
			continue
		}
		if verifyOne(ctx, repo, d, digest, keys, o) == nil {
			return nil
		}
	}
	return ErrNotVerified
}

// verifyOne checks one signature layer.
func verifyOne(ctx context.Context, repo name.Repository, d v1.Descriptor, digest string, keys []*ecdsa.PublicKey, o Options) error {
	sig, err := base64.StdEncoding.DecodeString(d.Annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		return ErrNotVerified
	}
	payload, err := readBlob(ctx, repo, d, o, maxPayload, nil)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(payload)
	ok := false
	for _, k := range keys {
		if ecdsa.VerifyASN1(k, sum[:], sig) {
			ok = true
			break
		}
	}
	if !ok {
		return ErrNotVerified
	}
	var p SimpleSigning
	if err := json.Unmarshal(payload, &p); err != nil || p.Critical.Image.DockerManifestDigest != digest {
		return ErrNotVerified
	}
	return nil
}
