package release

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRootUID is the image's user (and group): the Deployment's runAsUser.
const NonRootUID = 65532

// BinDir is where the image holds lacre and lacre-cluster; it is the
// image's PATH.
const BinDir = "/usr/local/bin"

func hostPlatform() Platform { return Platform{runtime.GOOS, runtime.GOARCH} }

// image builds the multi-arch image from the binaries of each platform,
// writes it as an OCI layout tar to Out and returns the index's digest.
func (b *builder) image(bins map[Platform]string, tag string) (string, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range sortedKeys(bins) {
		img, err := b.platformImage(p, bins[p])
		if err != nil {
			return "", fmt.Errorf("image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	digest, err := idx.Digest()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.work, "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	ann := map[string]string{"org.opencontainers.image.ref.name": tag}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(ann)); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(b.o.Out, ".image-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if err := tarDir(f, dir, b.o.Epoch); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return "", err
	}
	return digest.String(), os.Rename(f.Name(), filepath.Join(b.o.Out, b.o.ImageArchive()))
}

// platformImage is one platform's image: a single layer holding the
// binaries, a passwd and group naming the non-root user, /tmp and /data;
// no shell, no package manager, no git.
func (b *builder) platformImage(p Platform, binDir string) (v1.Image, error) {
	layerTar, err := b.rootfs(binDir)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	created := v1.Time{Time: b.o.Epoch.UTC()}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: created, CreatedBy: "hack/release (go-containerregistry)", Comment: "lacre and lacre-cluster"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = p.OS, p.Arch, created
	uid := fmt.Sprint(NonRootUID)
	cf.Config = v1.Config{
		User:       uid + ":" + uid,
		Env:        []string{"PATH=" + BinDir, "HOME=/home/nonroot", "TMPDIR=/tmp"},
		Entrypoint: []string{BinDir + "/lacre-cluster"},
		Cmd:        []string{"controller"},
		WorkingDir: "/home/nonroot",
		Labels: map[string]string{
			"org.opencontainers.image.title":       "lacre",
			"org.opencontainers.image.description": "SOPS-compatible encryption and Flux-compatible GitOps controllers",
			"org.opencontainers.image.source":      "https://github.com/lacre/lacre",
			"org.opencontainers.image.version":     b.o.Version,
			"org.opencontainers.image.revision":    b.o.Commit,
			"org.opencontainers.image.created":     created.Format("2006-01-02T15:04:05Z"),
			"org.opencontainers.image.licenses":    "Apache-2.0",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer's tar: sorted entries, owned by root (the writable
// directories by the non-root user), every time the epoch.
func (b *builder) rootfs(binDir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := b.o.Epoch.UTC()
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mt, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mt, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID)
	steps := []func() error{
		func() error { return dir("data", 0o755, NonRootUID) },
		func() error { return dir("etc", 0o755, 0) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return dir("home", 0o755, 0) },
		func() error { return dir("home/nonroot", 0o700, NonRootUID) },
		func() error { return dir("tmp", 0o1777, 0) },
		func() error { return dir("usr", 0o755, 0) },
		func() error { return dir("usr/local", 0o755, 0) },
		func() error { return dir("usr/local/bin", 0o755, 0) },
	}
	for _, name := range Commands { // sorted
		steps = append(steps, func() error {
			data, err := os.ReadFile(filepath.Join(binDir, name))
			if err != nil {
				return err
			}
			return file("usr/local/bin/"+name, 0o755, data)
		})
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteImage writes the image of the binaries already built in bins
// (platform → directory holding lacre and lacre-cluster) to o.Out, and
// returns the index's digest.
func WriteImage(o Options, bins map[Platform]string) (string, error) {
	work, err := os.MkdirTemp("", "lacre-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if o.ImageRepo == "" {
		o.ImageRepo = DefaultImageRepo
	}
	b := &builder{o: o, work: work}
	return b.image(bins, o.ImageRepo+":v"+o.Version)
}
