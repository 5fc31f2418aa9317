package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/gittest"
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
		"git@gitlab.com:org/repo.git//deploy?ref=main",
		"https://gitlab.com/org/repo.git//sub?ref=v1.2.3",
		"https://dev.azure.com/org/project/_git/repo",
		"ssh://github.com/org/repo//path?ref=main",
		"github.com/org/repo//path?ref=main&timeout=5",
		"git::git@github.com:org/repo",
		"HTTPS://127.0.0.1/base.yaml",
		"https://raw.githubusercontent.com/org/repo/main/cm.yaml",
	} {
		for _, field := range []string{"resources", "components", "bases", "crds", "generators", "transformers"} {
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

// TestRemoteNestedRefused: a remote form in a kustomization reached
// through any local directory (a transformer or generator given as a
// kustomization, a component, a base) is refused too.
func TestRemoteNestedRefused(t *testing.T) {
	for _, field := range []string{"resources", "components", "generators", "transformers", "validators"} {
		t.Run(field, func(t *testing.T) {
			files := artifact.Files{
				"app/kustomization.yaml":     []byte(strings.Replace("resources:\n  - cm.yaml\nF:\n  - ./sub\n", "\nF:", map[bool]string{true: "", false: "\n" + field + ":"}[field == "resources"], 1)),
				"app/cm.yaml":                []byte(cm),
				"app/sub/kustomization.yaml": []byte("resources:\n  - git@github.com:org/repo\n"),
			}
			_, err := buildWithin(t, files, Options{Path: "app"})
			if err == nil || !strings.Contains(err.Error(), "remote resource") {
				t.Fatalf("want a remote resource error, got %v", err)
			}
		})
	}
}

// TestRemoteAllowed: with AllowRemote (--allow-remote-bases), kustomize
// clones a remote base with git, as Flux does by default, and removes its
// clone afterwards.
func TestRemoteAllowed(t *testing.T) {
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("bases", "main")
	repo.Commit("base", map[string]string{"base/kustomization.yaml": "resources:\n  - cm.yaml\n", "base/cm.yaml": strings.ReplaceAll(cm, "name: cm", "name: remote-cm")})
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	files := artifact.Files{"app/kustomization.yaml": []byte("resources:\n  - cm.yaml\n  - " + repo.URL() + "/base?ref=main\n"), "app/cm.yaml": []byte(cm)}
	if _, err := buildWithin(t, files, Options{Path: "app"}); err == nil || !strings.Contains(err.Error(), "remote resource") {
		t.Fatalf("refused by default: %v", err)
	}
	res, err := buildWithin(t, files, Options{Path: "app", AllowRemote: true})
	if err != nil {
		t.Fatal(err)
	}
	if find(res, "ConfigMap", "remote-cm") == nil || find(res, "ConfigMap", "cm") == nil {
		t.Fatalf("objects: %v", res.Objects)
	}
	if m, _ := filepath.Glob(filepath.Join(tmp, "kustomize-*")); len(m) > 0 {
		t.Fatalf("clone directories left: %v", m)
	}
}
