// Package release builds lacre's release: static binaries for every
// supported OS and architecture, their archives, the multi-arch container
// image (an OCI image layout, built with go-containerregistry, no container
// daemon), install.yaml pinned to the image by digest, a CycloneDX SBOM and
// SHA-256 checksums. Everything is reproducible: the same commit and
// SOURCE_DATE_EPOCH give byte-identical files and the same image digest.
// hack/release is its command; only that command links this package.
package release

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Platform is one GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ParsePlatforms reads "linux/amd64,darwin/arm64"; "host" is this machine's.
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "host" {
			f = runtime.GOOS + "/" + runtime.GOARCH
		}
		os, arch, ok := strings.Cut(f, "/")
		if !ok || os == "" || arch == "" {
			return nil, fmt.Errorf("platform %q: want OS/ARCH", f)
		}
		out = append(out, Platform{os, arch})
	}
	return out, nil
}

// Platforms are the release's archives; ImagePlatforms its image's.
var (
	Platforms = []Platform{
		{"linux", "amd64"}, {"linux", "arm64"},
		{"darwin", "amd64"}, {"darwin", "arm64"},
		{"windows", "amd64"},
	}
	ImagePlatforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}
)

// DefaultImageRepo is where the release image is published; `lacre
// install` names it.
const DefaultImageRepo = "ghcr.io/lacre/lacre"

// Options say what to build.
type Options struct {
	Root    string // the module's root directory
	Out     string // the output directory (created; must be empty or missing)
	Version string // without the leading v
	Commit  string
	// Epoch is SOURCE_DATE_EPOCH: the commit's time. Every file time,
	// the image's creation time and the stamped build date are this.
	Epoch          time.Time
	Platforms      []Platform
	ImagePlatforms []Platform
	ImageRepo      string
	// SBOMTool is the path of cyclonedx-gomod; empty skips the SBOM.
	SBOMTool string
	Log      io.Writer
}

// Result is what Build made.
type Result struct {
	// ImageDigest is the digest of the image index (sha256:…).
	ImageDigest string
	// ImageRef is the image by tag and digest, as install.yaml names it.
	ImageRef string
	// Files are the release files, relative to Out, sorted.
	Files []string
}

// Build builds the release into o.Out.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.ImageRepo == "" {
		o.ImageRepo = DefaultImageRepo
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	if ents, _ := os.ReadDir(o.Out); len(ents) > 0 {
		return nil, fmt.Errorf("output directory %q is not empty", o.Out)
	}
	work, err := os.MkdirTemp("", "lacre-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	b := &builder{o: o, work: work}

	// The image's binaries cannot hold the image's digest: built first.
	imgBins := map[Platform]string{}
	for _, p := range o.ImagePlatforms {
		dir, err := b.binaries(ctx, p, "image", "")
		if err != nil {
			return nil, err
		}
		imgBins[p] = dir
	}
	tag := o.ImageRepo + ":v" + o.Version
	digest, err := b.image(imgBins, tag)
	if err != nil {
		return nil, err
	}
	res := &Result{ImageDigest: digest, ImageRef: tag + "@" + digest}
	fmt.Fprintf(o.Log, "image %s\n", res.ImageRef)

	// The archives' binaries name the image by digest.
	var host string
	for _, p := range o.Platforms {
		dir, err := b.binaries(ctx, p, "dist", digest)
		if err != nil {
			return nil, err
		}
		if p.OS == runtime.GOOS && p.Arch == runtime.GOARCH {
			host = dir
		}
		if err := b.archive(p, dir); err != nil {
			return nil, err
		}
	}
	if host == "" {
		if host, err = b.binaries(ctx, Platform{runtime.GOOS, runtime.GOARCH}, "host", digest); err != nil {
			return nil, err
		}
	}
	if err := b.installYAML(ctx, host); err != nil {
		return nil, err
	}
	if o.SBOMTool != "" {
		if err := b.sbom(ctx, host); err != nil {
			return nil, err
		}
	}
	files, err := writeChecksums(o.Out, ChecksumsFile)
	if err != nil {
		return nil, err
	}
	res.Files = files
	return res, nil
}

// ChecksumsFile lists "SHA256  name" for every other release file.
const ChecksumsFile = "checksums.txt"

// ImageArchive is the image's file name: an OCI image layout in a tar
// (podman load, skopeo copy oci-archive:…, crane push).
func (o Options) ImageArchive() string { return "lacre_" + o.Version + "_image.oci.tar" }

type builder struct {
	o    Options
	work string
}

func (b *builder) name(p Platform) string {
	return fmt.Sprintf("lacre_%s_%s_%s", b.o.Version, p.OS, p.Arch)
}

func exe(p Platform, name string) string {
	if p.OS == "windows" {
		return name + ".exe"
	}
	return name
}

func sortedKeys[V any](m map[Platform]V) []Platform {
	var ps []Platform
	for p := range m {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Platform) int { return strings.Compare(a.String(), b.String()) })
	return ps
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return r
}
