package ociartifact

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lacre/lacre/internal/artifact"
)

// DefaultIgnorePaths are the patterns `flux push artifact` leaves out when
// --ignore-paths is not given: VCS metadata and archive and image files.
// (A GitRepository's defaults, artifact.DefaultIgnore, leave out more.)
var DefaultIgnorePaths = []string{
	".git/", ".gitignore", ".gitmodules", ".gitattributes",
	"*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
}

// SourceFS returns the tree to archive for a local path: the directory
// itself, or a tree holding only the file when path is a file (as flux
// archives a single manifest).
func SourceFS(path string) (fs.FS, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("invalid path '%s', must point to an existing directory or file: %w", path, err)
	}
	if st.IsDir() {
		return os.DirFS(path), nil
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("invalid path '%s': not a regular file or a directory", path)
	}
	if st.Size() > artifact.DefaultMaxFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %s", artifact.ErrTooLarge, path, artifact.FormatSize(artifact.DefaultMaxFileSize))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return SingleFile(filepath.Base(path), data, st.Mode()), nil
}

// SingleFile is a tree holding one file at its root.
func SingleFile(name string, data []byte, mode fs.FileMode) fs.FS {
	return fstest.MapFS{name: &fstest.MapFile{Data: data, Mode: mode.Perm()}}
}

// BuildLayer packages fsys as the artifact's tar.gz with
// artifact.Build (the layout of a GitRepository's artifact: entries
// sorted, owners and times zeroed, files 0600 or 0700, directories 0750),
// leaving out what ignorePaths (.gitignore syntax) and the tree's
// .sourceignore files match, within lim. The same tree always gives the
// same bytes, whatever the umask or checkout.
func BuildLayer(fsys fs.FS, ignorePaths []string, lim artifact.Limits) ([]byte, error) {
	ps := artifact.ParseIgnore(strings.Join(ignorePaths, "\n"), nil)
	if ps == nil {
		ps = []gitignore.Pattern{} // nil would mean a GitRepository's defaults
	}
	return artifact.Build(fsys, ps, lim)
}

// Image returns Flux's artifact for a tar.gz layer: an OCI manifest whose
// config has Flux's config media type and the created time, one layer of
// Flux's content media type, and the annotations flux sets: created,
// source and revision, then meta.Annotations (which may override them).
// An empty meta.Created means now; created must be RFC 3339.
func Image(layer []byte, meta Metadata) (v1.Image, error) {
	ann := map[string]string{
		CreatedAnnotation:  meta.Created,
		SourceAnnotation:   meta.Source,
		RevisionAnnotation: meta.Revision,
	}
	for k, v := range meta.Annotations {
		ann[k] = v
	}
	if ann[CreatedAnnotation] == "" {
		ann[CreatedAnnotation] = time.Now().UTC().Format(time.RFC3339)
	}
	created, err := time.Parse(time.RFC3339, ann[CreatedAnnotation])
	if err != nil {
		return nil, fmt.Errorf("invalid created timestamp %q: %w", ann[CreatedAnnotation], err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer)), nil
	}, tarball.WithMediaType(ContentMediaType))
	if err != nil {
		return nil, fmt.Errorf("creating the layer: %w", err)
	}
	// The config is an image config (created time, the layer's diff ID,
	// one empty history entry) as flux's go-containerregistry v0.21 wrote
	// it; its media type is set last, as v0.22 leaves the config of a
	// non-image media type unchanged.
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg.Created = v1.Time{Time: created}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	img = mutate.Annotations(img, ann).(v1.Image)
	if img, err = mutate.Append(img, mutate.Addendum{Layer: l}); err != nil {
		return nil, err
	}
	return mutate.ConfigMediaType(img, ConfigMediaType), nil
}
