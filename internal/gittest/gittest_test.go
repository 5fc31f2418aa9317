package gittest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestServerCloneAfterPush pushes with the error-returning core and clones
// over HTTP, with and without basic auth.
func TestServerCloneAfterPush(t *testing.T) {
	for _, user := range []string{"", "git"} {
		s := New(t, user, "pw")
		r, err := s.CreateRepo("r", "main", filepath.Join(t.TempDir(), "work"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := r.Push("one", map[string]string{"a/b.yaml": "b: 1\n"})
		if err != nil {
			t.Fatal(err)
		}
		url := r.URL()
		if user != "" {
			if _, err := RunGit(t.TempDir(), "clone", "-q", url, "x"); err == nil {
				t.Fatal("cloned without credentials")
			}
			url = "http://git:pw@" + url[len("http://"):]
		}
		dir := t.TempDir()
		Git(t, dir, "clone", "-q", url, "c")
		if got := Git(t, filepath.Join(dir, "c"), "rev-parse", "HEAD"); got != h {
			t.Errorf("cloned HEAD %s, pushed %s", got, h)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "c", "a", "b.yaml")); err != nil || string(b) != "b: 1\n" {
			t.Errorf("a/b.yaml: %q %v", b, err)
		}
	}
}
