package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/artifact"
)

// TestRemoteGitRefused: every form kustomize would clone (scp-like
// user@host:path, host:org/repo, git::, ssh://, https URLs to a .git
// repository, github.com/… shorthands) is refused before kustomize runs: no
// `git` process starts (a fake git on PATH records calls) and no
// kustomize-* clone directory appears in TMPDIR.
func TestRemoteGitRefused(t *testing.T) {
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	fake := "#!/bin/sh\necho \"$@\" >> " + calls + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	for _, r := range []string{
		"deploy@127.0.0.1:org/repo.git",
		"github.com:org/repo",
		"git@github.com:org/repo",
		"git::https://127.0.0.1/org/repo",
		"ssh://deploy@127.0.0.1/org/repo.git",
		"https://127.0.0.1/org/repo.git",
		"https://github.com/org/repo//deploy?ref=v1",
		"http://127.0.0.1:1/org/repo",
		"github.com/org/repo",
		"file:///tmp/repo.git",
	} {
		for _, field := range []string{"resources", "components"} {
			t.Run(field+" "+r, func(t *testing.T) {
				os.Remove(calls)
				tmp := t.TempDir()
				t.Setenv("TMPDIR", tmp)
				files := artifact.Files{"app/kustomization.yaml": []byte(field + ":\n  - " + r + "\n"), "app/cm.yaml": []byte(cm)}
				_, err := buildWithin(t, files, Options{Path: "app"})
				if err == nil || !strings.Contains(err.Error(), "remote resource") || !strings.Contains(err.Error(), r) {
					t.Fatalf("want a remote resource error naming %q, got %v", r, err)
				}
				if b, _ := os.ReadFile(calls); len(b) > 0 {
					t.Fatalf("git was started: %s", b)
				}
				if m, _ := filepath.Glob(filepath.Join(tmp, "kustomize-*")); len(m) > 0 {
					t.Fatalf("clone directories left: %v", m)
				}
			})
		}
	}
}
