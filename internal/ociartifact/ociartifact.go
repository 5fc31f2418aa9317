// Package ociartifact owns Flux's OCI artifact format and the registry
// operations on it: the tar.gz layer (internal/artifact.Build), the
// manifest with Flux's media types and OpenContainers annotations, and
// Push, Pull, Tag and List with go-containerregistry, every read from the
// registry bounded and the pulled layer checked against its size and
// digest. Credentials come from the caller (a docker config.json keychain
// or fixed --creds): the package reads no environment variable.
package ociartifact

import (
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
)

// Flux's media types (fluxcd/pkg/oci) and the annotations `flux push
// artifact` sets on the manifest.
const (
	ConfigMediaType  = "application/vnd.cncf.flux.config.v1+json"
	ContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"

	SourceAnnotation   = "org.opencontainers.image.source"
	RevisionAnnotation = "org.opencontainers.image.revision"
	CreatedAnnotation  = "org.opencontainers.image.created"

	// URLPrefix starts every artifact URL.
	URLPrefix = "oci://"
)

// Metadata describes an artifact as flux prints it (its JSON names are
// flux's).
type Metadata struct {
	Created     string            `json:"created,omitempty"`
	Source      string            `json:"source_url,omitempty"`
	Revision    string            `json:"source_revision,omitempty"`
	Digest      string            `json:"digest"`
	URL         string            `json:"url"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// metadataFrom reads the OpenContainers annotations of a manifest.
func metadataFrom(ann map[string]string) Metadata {
	return Metadata{
		Created:     ann[CreatedAnnotation],
		Source:      ann[SourceAnnotation],
		Revision:    ann[RevisionAnnotation],
		Annotations: ann,
	}
}

// errURLFormat is flux's message for a URL without the oci:// scheme.
var errURLFormat = errors.New("URL must be in format 'oci://<domain>/<org>/<repo>'")

// ParseArtifactURL parses "oci://host/repo[:tag|@digest]" (":latest" when
// neither is given). insecure allows plain HTTP to the registry.
func ParseArtifactURL(u string, insecure bool) (name.Reference, error) {
	rest, ok := strings.CutPrefix(u, URLPrefix)
	if !ok {
		return nil, errURLFormat
	}
	ref, err := name.ParseReference(rest, nameOptions(insecure)...)
	if err != nil {
		return nil, fmt.Errorf("'%s' invalid URL: %w", u, err)
	}
	return ref, nil
}

// ParseRepositoryURL parses "oci://host/repo", ignoring a tag or digest.
func ParseRepositoryURL(u string, insecure bool) (name.Repository, error) {
	ref, err := ParseArtifactURL(u, insecure)
	if err != nil {
		return name.Repository{}, err
	}
	return ref.Context(), nil
}

func nameOptions(insecure bool) []name.Option {
	if insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// ParseVersion parses a tag as a semantic version the way Flux does for
// OCI tags: three dot-separated parts are required ("1.2" is no
// version), a "v" prefix and leading zeros are accepted.
func ParseVersion(tag string) (*semver.Version, error) {
	if len(strings.SplitN(tag, ".", 3)) != 3 {
		return nil, semver.ErrInvalidSemVer
	}
	return semver.NewVersion(tag)
}

// IsCosignArtifact reports whether a tag names a cosign signature,
// attestation or SBOM (".sig", ".att", ".sbom"), which listings skip.
func IsCosignArtifact(tag string) bool {
	for _, s := range []string{".att", ".sbom", ".sig"} {
		if strings.HasSuffix(tag, s) {
			return true
		}
	}
	return false
}
