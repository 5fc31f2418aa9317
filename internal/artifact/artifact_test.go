package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

func tree() fstest.MapFS {
	return fstest.MapFS{
		"apps/deploy.yaml":         {Data: []byte("kind: Deployment\n")},
		"apps/secret.enc.yaml":     {Data: []byte("sops: {}\n")},
		"apps/run.sh":              {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		"apps/.sourceignore":       {Data: []byte("*.tmp\n")},
		"apps/scratch.tmp":         {Data: []byte("x")},
		".git/config":              {Data: []byte("[core]")},
		".sops.yaml":               {Data: []byte("creation_rules: []")},
		"logo.png":                 {Data: []byte("png")},
		"infra/kustomization.yaml": {Data: []byte("resources: []\n")},
	}
}

func names(t *testing.T, files Files) []string {
	t.Helper()
	var out []string
	for n := range files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestBuildDeterministicAndIgnores(t *testing.T) {
	a, err := Build(tree(), nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(tree(), nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || Digest(a) != Digest(b) {
		t.Fatal("the same tree gave different artifacts")
	}
	files, err := Extract(a, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, files)
	want := []string{"apps/.sourceignore", "apps/deploy.yaml", "apps/run.sh", "apps/secret.enc.yaml", "infra/kustomization.yaml"}
	if len(got) != len(want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("files = %v, want %v", got, want)
		}
	}
	// spec.ignore replaces the defaults.
	c, err := Build(tree(), ParseIgnore("apps/\n", nil), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	files, _ = Extract(c, Limits{})
	if _, ok := files["apps/deploy.yaml"]; ok {
		t.Error("spec.ignore did not exclude apps/")
	}
	if _, ok := files[".git/config"]; !ok {
		t.Error("spec.ignore should replace the default exclusions")
	}
}

func TestBuildSkipsSymlinks(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("a"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link.yaml"))
	data, err := Build(os.DirFS(dir), nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := Extract(data, Limits{})
	if _, ok := files["link.yaml"]; ok || len(files) != 1 {
		t.Fatalf("symlink archived: %v", names(t, files))
	}
}

func tarGz(t *testing.T, entries map[string]string, typ byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, c := range entries {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: typ, Size: int64(len(c)), Mode: 0o600, Linkname: "/etc/passwd"})
		if typ == tar.TypeReg {
			tw.Write([]byte(c))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	for _, n := range []string{"../escape.yaml", "/abs.yaml", "a/../../x"} {
		if _, err := Extract(tarGz(t, map[string]string{n: "x"}, tar.TypeReg), Limits{}); err == nil {
			t.Errorf("%q extracted", n)
		}
	}
	files, err := Extract(tarGz(t, map[string]string{"l.yaml": ""}, tar.TypeSymlink), Limits{})
	if err != nil || len(files) != 0 {
		t.Errorf("symlink member: %v %v", files, err)
	}
	// A highly compressible 8 MiB file against a 1 MiB limit.
	big := tarGz(t, map[string]string{"bomb": string(make([]byte, 8<<20))}, tar.TypeReg)
	if _, err := Extract(big, Limits{MaxFileSize: 1 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("bomb: %v", err)
	}
	if _, err := Extract([]byte("not gzip"), Limits{}); err == nil {
		t.Error("garbage extracted")
	}
}

func TestStoreServeFetch(t *testing.T) {
	s, err := NewStore(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		s.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	s.SetBaseURL(srv.URL)
	data, _ := Build(tree(), nil, Limits{})
	st, err := s.Put("GitRepository", "ns", "repo", data)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{}
	files, err := f.Fetch(context.Background(), st.URL, st.Digest)
	if err != nil || len(files) != 5 {
		t.Fatalf("fetch: %v (%d files)", err, len(files))
	}
	if _, err := f.Fetch(context.Background(), st.URL, st.Digest); err != nil || hits.Load() != 1 {
		t.Fatalf("second fetch of the same digest hit the server: %d", hits.Load())
	}
	// A tampered artifact is refused.
	full := filepath.Join(s.Root(), filepath.FromSlash(st.Path))
	raw, _ := os.ReadFile(full)
	raw[len(raw)/2] ^= 0xff
	os.WriteFile(full, raw, 0o600)
	if _, err := (&Fetcher{}).Fetch(context.Background(), st.URL, st.Digest); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("tampered artifact: %v", err)
	}
	if _, err := (&Fetcher{}).Fetch(context.Background(), srv.URL+"/gitrepository/ns/repo/nope.tar.gz", st.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing artifact: %v", err)
	}
	// Directory listings are not served.
	resp, _ := http.Get(srv.URL + "/gitrepository/ns/repo/")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("listing served: %d", resp.StatusCode)
	}
	// GC keeps the current artifact.
	other, _ := s.Put("GitRepository", "ns", "repo", []byte("other"))
	if err := s.GC("GitRepository", "ns", "repo", other.Path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(full); !os.IsNotExist(err) {
		t.Fatal("old artifact not collected")
	}
	if _, err := os.Stat(filepath.Join(s.Root(), filepath.FromSlash(other.Path))); err != nil {
		t.Fatal("current artifact collected")
	}
}

func FuzzExtract(f *testing.F) {
	data, err := Build(tree(), nil, Limits{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := Extract(b, Limits{MaxFiles: 100, MaxFileSize: 1 << 16, MaxTotalSize: 1 << 20})
		if err != nil {
			return
		}
		for n := range files {
			if _, err := cleanPath(n); err != nil {
				t.Fatalf("unsafe path extracted: %q", n)
			}
		}
	})
}
