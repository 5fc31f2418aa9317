package source

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/gittest"
)

// TestCheckoutSubmodules: a repository with a submodule (absolute URL)
// holding a nested one (relative URL), on a server with basic auth: the
// checkout has every level's files at their paths, each at its gitlink's
// commit (not the submodule's newer tip), and the revision is the
// parent's. A want that excludes a path leaves that submodule out.
func TestCheckoutSubmodules(t *testing.T) {
	srv := gittest.New(t, "git", "s3cret")
	auth := &Auth{Username: "git", Password: "s3cret"}
	leaf := srv.NewRepo("leaf", "main")
	leafC := leaf.Commit("leaf", map[string]string{"leaf.yaml": "leaf: 1\n"})
	lib := srv.NewRepo("lib", "main")
	lib.Commit("lib", map[string]string{"lib.yaml": "lib: 1\n"})
	libC := lib.AddSubmodule("vendor/leaf", "../leaf.git", leafC)
	lib.Commit("lib 2", map[string]string{"lib.yaml": "lib: 2\n"}) // newer tip, not linked
	app := srv.NewRepo("app", "main")
	app.Commit("app", map[string]string{"app.yaml": "app: 1\n"})
	appC := app.AddSubmodule("libs/lib", lib.URL(), libC)

	ctx := context.Background()
	c, err := CheckoutRecursive(ctx, app.URL(), Ref{Branch: "main"}, auth, artifact.Limits{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision != "main@sha1:"+appC {
		t.Fatalf("revision %s", c.Revision)
	}
	for name, want := range map[string]string{"app.yaml": "app: 1\n", "libs/lib/lib.yaml": "lib: 1\n", "libs/lib/vendor/leaf/leaf.yaml": "leaf: 1\n"} {
		if f := c.Files[name]; f == nil || string(f.Data) != want {
			t.Fatalf("%s: got %v, want %q (files %v)", name, f, want, keys(c.Files))
		}
	}

	c, err = CheckoutRecursive(ctx, app.URL(), Ref{Branch: "main"}, auth, artifact.Limits{}, nil, func(p string) bool { return p != "libs/lib/vendor/leaf" })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Files["libs/lib/vendor/leaf/leaf.yaml"]; ok || c.Files["libs/lib/lib.yaml"] == nil {
		t.Fatalf("want lib without leaf: %v", keys(c.Files))
	}
	// Without recursion the submodules stay out, as before.
	c, err = Checkout(ctx, app.URL(), Ref{Branch: "main"}, auth, artifact.Limits{})
	if err != nil || len(c.Files) != 2 {
		t.Fatalf("plain checkout: %v %v", keys(c.Files), err)
	}
}

// TestSubmoduleCredentials: the secretRef's credentials go to spec.url's
// host and port only. A submodule on another server asking for the same
// password fails authentication (nothing was sent to it); one on an
// anonymous server is fetched.
func TestSubmoduleCredentials(t *testing.T) {
	srv := gittest.New(t, "git", "s3cret")
	other := gittest.New(t, "git", "s3cret")
	open := gittest.New(t, "", "")
	auth := &Auth{Username: "git", Password: "s3cret"}
	guarded := other.NewRepo("guarded", "main")
	gC := guarded.Commit("g", map[string]string{"g.yaml": "g\n"})
	public := open.NewRepo("public", "main")
	pC := public.Commit("p", map[string]string{"p.yaml": "p\n"})

	app := srv.NewRepo("app", "main")
	app.Commit("app", map[string]string{"app.yaml": "app\n"})
	app.AddSubmodule("public", public.URL(), pC)
	c, err := CheckoutRecursive(context.Background(), app.URL(), Ref{Branch: "main"}, auth, artifact.Limits{}, nil, nil)
	if err != nil || c.Files["public/p.yaml"] == nil {
		t.Fatalf("anonymous submodule: %v %v", err, keys(c.Files))
	}
	app.AddSubmodule("guarded", guarded.URL(), gC)
	_, err = CheckoutRecursive(context.Background(), app.URL(), Ref{Branch: "main"}, auth, artifact.Limits{}, nil, nil)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), `submodule "guarded"`) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("want ErrAuth for the other host's submodule, got %v", err)
	}
}

// TestSubmoduleRefused: .gitmodules is the repository authors' input:
// local paths, file://, other schemes, remote helpers, SSH elsewhere,
// paths out of the tree, entries without a gitlink, and submodules over
// the limits, the depth or the count are refused, naming the submodule.
func TestSubmoduleRefused(t *testing.T) {
	srv := gittest.New(t, "", "")
	lib := srv.NewRepo("lib", "main")
	libC := lib.Commit("lib", map[string]string{"a": strings.Repeat("a", 4096), "b": "b", "c": "c"})
	ctx := context.Background()
	app := srv.NewRepo("app", "main")
	app.Commit("app", map[string]string{"app.yaml": "app\n"})
	for _, tc := range []struct {
		name, url string
		lim       artifact.Limits
		want      error
		msg       string
	}{
		{"file", "file:///etc", artifact.Limits{}, ErrSubmodule, `"file:///etc": scheme must be http, https or ssh`},
		{"local", "/srv/git/lib.git", artifact.Limits{}, ErrSubmodule, `"/srv/git/lib.git": a local path is not allowed`},
		{"helper", "ext::sh -c touch% /tmp/x", artifact.Limits{}, ErrSubmodule, "remote helper URLs"},
		{"ftp", "ftp://example.invalid/x.git", artifact.Limits{}, ErrSubmodule, "scheme must be http, https or ssh"},
		{"ssh elsewhere", "git@example.invalid:org/x.git", artifact.Limits{}, ErrSubmodule, `"ssh://git@example.invalid/org/x.git" is an SSH URL on another host`},
		{"too large", lib.URL(), artifact.Limits{MaxTotalSize: 4096}, artifact.ErrTooLarge, "exceeds 4096 bytes"},
		{"too many files", lib.URL(), artifact.Limits{MaxFiles: 4}, artifact.ErrTooLarge, "more than 4 files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app.AddSubmodule("sub", tc.url, libC)
			_, err := CheckoutRecursive(ctx, app.URL(), Ref{Branch: "main"}, nil, tc.lim, nil, nil)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want %v %q, got %v", tc.want, tc.msg, err)
			}
		})
	}
	bad := srv.NewRepo("bad", "main")
	for _, tc := range []struct{ name, gitmodules, msg string }{
		{"dotdot", "[submodule \"x\"]\n\tpath = ../x\n\turl = ../lib.git\n", "invalid path"},
		{"dotgit", "[submodule \"x\"]\n\tpath = a/.git\n\turl = ../lib.git\n", `path "a/.git" has a '.', '..' or '.git' component`},
		{"no gitlink", "[submodule \"x\"]\n\tpath = x\n\turl = ../lib.git\n", `names path "x", which is not a submodule`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad.Commit("app", map[string]string{".gitmodules": tc.gitmodules, "x/y": "y"})
			_, err := CheckoutRecursive(ctx, bad.URL(), Ref{Branch: "main"}, nil, artifact.Limits{}, nil, nil)
			if !errors.Is(err, ErrSubmodule) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want ErrSubmodule %q, got %v", tc.msg, err)
			}
		})
	}
	t.Run("depth and count", func(t *testing.T) {
		defer func(d, n int) { maxSubmoduleDepth, maxSubmodules = d, n }(maxSubmoduleDepth, maxSubmodules)
		mid := srv.NewRepo("mid", "main")
		mid.Commit("mid", map[string]string{"m": "m"})
		midC := mid.AddSubmodule("lib", "../lib.git", libC)
		top := srv.NewRepo("top", "main")
		top.Commit("top", map[string]string{"t": "t"})
		top.AddSubmodule("mid", "../mid.git", midC)
		top.AddSubmodule("lib", "./../lib.git", libC)
		maxSubmoduleDepth = 1
		_, err := CheckoutRecursive(ctx, top.URL(), Ref{Branch: "main"}, nil, artifact.Limits{}, nil, nil)
		if !errors.Is(err, ErrSubmodule) || !strings.Contains(err.Error(), `"mid/lib": submodules nest deeper than 1 levels`) {
			t.Fatalf("depth: %v", err)
		}
		maxSubmoduleDepth, maxSubmodules = 2, 2
		_, err = CheckoutRecursive(ctx, top.URL(), Ref{Branch: "main"}, nil, artifact.Limits{}, nil, nil)
		if !errors.Is(err, ErrSubmodule) || !strings.Contains(err.Error(), "more than 2 submodules") {
			t.Fatalf("count: %v", err)
		}
		maxSubmodules = 3
		c, err := CheckoutRecursive(ctx, top.URL(), Ref{Branch: "main"}, nil, artifact.Limits{}, nil, nil)
		if err != nil || c.Files["mid/lib/b"] == nil || c.Files["lib/b"] == nil {
			t.Fatalf("within the bounds: %v", err)
		}
	})
}

func TestResolveSubmoduleURL(t *testing.T) {
	const parent = "https://git.example/org/app.git"
	for raw, want := range map[string]string{
		"../lib.git":                   "https://git.example/org/lib.git",
		"./lib":                        "https://git.example/org/app.git/lib",
		"../../../../../etc/x.git":     "https://git.example/etc/x.git",
		"lib.git":                      "https://git.example/org/app.git/lib.git",
		"https://other.example/x.git":  "https://other.example/x.git",
		"git@git.example:org/lib.git":  "ssh://git@git.example/org/lib.git",
		"ssh://git@git.example/x.git":  "ssh://git@git.example/x.git",
		"http://plain.example/lib.git": "http://plain.example/lib.git",
	} {
		got, err := ResolveSubmoduleURL(parent, raw)
		if err != nil || got != want {
			t.Errorf("%q: got %q %v, want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{"file:///etc/passwd", "/abs/path", "\\\\share\\x", "ext::sh", "fd::3", "ftp://h/x", "https://"} {
		if got, err := ResolveSubmoduleURL(parent, raw); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("%q: want ErrInvalidURL, got %q %v", raw, got, err)
		}
	}
	if got, err := ResolveSubmoduleURL("https://u:pw@h/x.git", "ftp://u:secret@h/y"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("password quoted: %q %v", got, err)
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"https://h/x", "https://H:443/y", true},
		{"https://h/x", "http://h/x", false},
		{"https://h/x", "https://h:8443/x", false},
		{"ssh://git@h/x", "ssh://other@h:22/y", true},
		{"https://h/x", "https://evil.h/x", false},
	} {
		if got := sameOrigin(tc.a, tc.b); got != tc.want {
			t.Errorf("sameOrigin(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestParseGitmodulesBounds: go-git's config decoder is quadratic in the
// sections, so a .gitmodules with too many, or too large, is refused
// before it is decoded.
func TestParseGitmodulesBounds(t *testing.T) {
	for name, data := range map[string]string{
		"sections": strings.Repeat("[s]\n", maxGitmodulesSections+1),
		"size":     "[submodule \"a\"]\n\tpath = a\n\turl = ../a.git\n#" + strings.Repeat("x", maxGitmodules),
	} {
		if _, err := parseGitmodules([]byte(data)); err == nil || !strings.Contains(err.Error(), "more than") && !strings.Contains(err.Error(), "larger than") {
			t.Errorf("%s: want refused, got %v", name, err)
		}
	}
	subs, err := parseGitmodules([]byte("[submodule \"b\"]\n\tpath = b\n\turl = ../b.git\n[submodule \"a\"]\n\tpath = a/x\n\turl = https://h/a.git\n"))
	if err != nil || len(subs) != 2 || subs[0].path != "a/x" || subs[1].url != "../b.git" {
		t.Fatalf("got %+v %v", subs, err)
	}
}
