package artifact

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// A Store keeps artifacts on disk under a root directory, named by kind,
// namespace, name and digest (content-addressed), and serves them over HTTP.
// Artifacts hold only what is in Git: encrypted files stay encrypted.
type Store struct {
	root    string
	baseURL string
	mu      sync.Mutex
}

// NewStore returns a store rooted at dir, whose artifacts are reachable at
// baseURL (e.g. http://127.0.0.1:9090).
func NewStore(dir, baseURL string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	return &Store{root: dir, baseURL: strings.TrimSuffix(baseURL, "/")}, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// SetBaseURL changes the advertised address (once a server is listening).
func (s *Store) SetBaseURL(u string) { s.baseURL = strings.TrimSuffix(u, "/") }

// Stored describes a stored artifact.
type Stored struct {
	Path   string // relative, slash-separated
	URL    string
	Digest string
	Size   int64
}

// Put stores data for an object and returns where it is. Storing the same
// bytes again is a no-op.
func (s *Store) Put(kind, namespace, name string, data []byte) (Stored, error) {
	digest := Digest(data)
	hexsum := strings.TrimPrefix(digest, "sha256:")
	rel := path.Join(strings.ToLower(kind), namespace, name, hexsum+".tar.gz")
	full := filepath.Join(s.root, filepath.FromSlash(rel))
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, err := os.Stat(full); err != nil || st.Size() != int64(len(data)) {
		if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
			return Stored{}, err
		}
		tmp, err := os.CreateTemp(filepath.Dir(full), ".tmp-*")
		if err != nil {
			return Stored{}, err
		}
		if _, err := tmp.Write(data); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return Stored{}, err
		}
		if err := tmp.Close(); err != nil {
			os.Remove(tmp.Name())
			return Stored{}, err
		}
		if err := os.Rename(tmp.Name(), full); err != nil {
			os.Remove(tmp.Name())
			return Stored{}, err
		}
	}
	now := time.Now()
	_ = os.Chtimes(full, now, now)
	return Stored{Path: rel, URL: s.baseURL + "/" + rel, Digest: digest, Size: int64(len(data))}, nil
}

// GC removes an object's artifacts except keep (a relative path) and the
// newest `retain` others.
func (s *Store) GC(kind, namespace, name, keep string, retain int) error {
	dir := filepath.Join(s.root, strings.ToLower(kind), namespace, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	type f struct {
		name string
		mod  time.Time
	}
	var files []f
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".tar.gz") || path.Base(keep) == e.Name() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, f{e.Name(), info.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
	for i, x := range files {
		if i < retain {
			continue
		}
		if err := os.Remove(filepath.Join(dir, x.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Delete removes every artifact of an object.
func (s *Store) Delete(kind, namespace, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return os.RemoveAll(filepath.Join(s.root, strings.ToLower(kind), namespace, name))
}

// Handler serves the store's files read-only, without directory listings.
func (s *Store) Handler() http.Handler {
	fsrv := http.FileServer(http.Dir(s.root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") || !strings.HasSuffix(r.URL.Path, ".tar.gz") {
			http.NotFound(w, r)
			return
		}
		fsrv.ServeHTTP(w, r)
	})
}

// Serve listens on addr (e.g. 127.0.0.1:0) and serves the store until the
// returned stop function is called. It returns the base URL.
func (s *Store) Serve(addr string) (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	u := fmt.Sprintf("http://%s", ln.Addr().String())
	return u, func() { srv.Close() }, nil
}

// Has reports whether the artifact at a relative path is stored.
func (s *Store) Has(rel string) bool {
	_, err := os.Stat(filepath.Join(s.root, filepath.FromSlash(rel)))
	return err == nil
}
