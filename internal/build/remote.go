package build

import (
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Remote bases, when Options.AllowRemote lets kustomize fetch them (Flux's
// default; lacre refuses them unless the controller runs with
// --allow-remote-bases). kustomize fetches http(s) files itself and clones
// git repositories with the git command into kustomize-* directories of
// the system's temporary directory, which it then reads through the
// build's file system: routeFS sends those paths to the disk and every
// other path to the in-memory lazyFS. Nothing decrypted is written there:
// files of a remote base are read as they are.

// routeFS is lazyFS with kustomize's clone directories on disk.
type routeFS struct {
	*lazyFS
	disk   filesys.FileSystem
	prefix string // the clone directories' prefix, links resolved
}

func newRouteFS(l *lazyFS) *routeFS {
	tmp := os.TempDir()
	if d, err := filepath.EvalSymlinks(tmp); err == nil {
		tmp = d
	}
	return &routeFS{lazyFS: l, disk: filesys.MakeFsOnDisk(), prefix: filepath.Join(tmp, "kustomize-")}
}

// on returns the file system that holds p.
func (r *routeFS) on(p string) filesys.FileSystem {
	if strings.HasPrefix(filepath.Clean(p), r.prefix) {
		return r.disk
	}
	return r.lazyFS
}

func (r *routeFS) Create(p string) (filesys.File, error) { return r.on(p).Create(p) }
func (r *routeFS) Mkdir(p string) error                  { return r.on(p).Mkdir(p) }
func (r *routeFS) MkdirAll(p string) error               { return r.on(p).MkdirAll(p) }
func (r *routeFS) RemoveAll(p string) error              { return r.on(p).RemoveAll(p) }
func (r *routeFS) Open(p string) (filesys.File, error)   { return r.on(p).Open(p) }
func (r *routeFS) IsDir(p string) bool                   { return r.on(p).IsDir(p) }
func (r *routeFS) ReadDir(p string) ([]string, error)    { return r.on(p).ReadDir(p) }
func (r *routeFS) Exists(p string) bool                  { return r.on(p).Exists(p) }
func (r *routeFS) Glob(p string) ([]string, error)       { return r.on(p).Glob(p) }
func (r *routeFS) ReadFile(p string) ([]byte, error)     { return r.on(p).ReadFile(p) }
func (r *routeFS) WriteFile(p string, d []byte) error    { return r.on(p).WriteFile(p, d) }
func (r *routeFS) Walk(p string, fn filepath.WalkFunc) error {
	return r.on(p).Walk(p, fn)
}
func (r *routeFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	return r.on(p).CleanedAbs(p)
}
