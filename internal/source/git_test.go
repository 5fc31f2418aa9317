package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/gittest"
)

func TestCheckoutRefs(t *testing.T) {
	srv := gittest.New(t, "git", "s3cret")
	repo := srv.NewRepo("app", "main")
	c1 := repo.Commit("one", map[string]string{"a.yaml": "a: 1\n", "dir/b.yaml": "b: 1\n"})
	repo.Tag("v1.0.0")
	c2 := repo.Commit("two", map[string]string{"a.yaml": "a: 2\n"})
	repo.Tag("v1.1.0")
	repo.Run("checkout", "-q", "-b", "feature")
	c3 := repo.Commit("three", map[string]string{"c.yaml": "c: 3\n"})
	repo.Run("checkout", "-q", "main")

	auth := &Auth{Username: "git", Password: "s3cret"}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		ref     Ref
		hash    string
		rev     string
		content string
	}{
		{"branch", Ref{Branch: "main"}, c2, "main@sha1:" + c2, "a: 2\n"},
		{"other branch", Ref{Branch: "feature"}, c3, "feature@sha1:" + c3, "a: 2\n"},
		{"tag", Ref{Tag: "v1.0.0"}, c1, "v1.0.0@sha1:" + c1, "a: 1\n"},
		{"semver", Ref{SemVer: "~1.0"}, c1, "v1.0.0@sha1:" + c1, "a: 1\n"},
		{"semver latest", Ref{SemVer: ">=1.0.0"}, c2, "v1.1.0@sha1:" + c2, "a: 2\n"},
		{"commit", Ref{Commit: c1}, c1, "sha1:" + c1, "a: 1\n"},
		{"commit on branch", Ref{Branch: "main", Commit: c1}, c1, "main@sha1:" + c1, "a: 1\n"},
		{"name", Ref{Name: "refs/heads/feature"}, c3, "refs/heads/feature@sha1:" + c3, "a: 2\n"},
		{"commit beats tag", Ref{Tag: "v1.1.0", Commit: c1}, c1, "sha1:" + c1, "a: 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Checkout(ctx, repo.URL(), tc.ref, auth, artifact.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Hash != tc.hash || c.Revision != tc.rev {
				t.Fatalf("got %s %s, want %s %s", c.Hash, c.Revision, tc.hash, tc.rev)
			}
			if got := string(c.Files["a.yaml"].Data); got != tc.content {
				t.Fatalf("a.yaml = %q, want %q", got, tc.content)
			}
			h, rev, err := LsRemote(ctx, repo.URL(), tc.ref, auth)
			if err != nil || h != tc.hash || rev != tc.rev {
				t.Fatalf("LsRemote = %s %s %v", h, rev, err)
			}
		})
	}

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			url  string
			ref  Ref
			auth *Auth
			want error
		}{
			{"bad password", repo.URL(), Ref{Branch: "main"}, &Auth{Username: "git", Password: "wrong"}, ErrAuth},
			{"no credentials", repo.URL(), Ref{Branch: "main"}, nil, ErrAuth},
			{"unknown branch", repo.URL(), Ref{Branch: "nope"}, auth, ErrRefNotFound},
			{"unknown tag", repo.URL(), Ref{Tag: "v9"}, auth, ErrRefNotFound},
			{"no semver match", repo.URL(), Ref{SemVer: ">=5.0.0"}, auth, ErrRefNotFound},
			{"bad semver", repo.URL(), Ref{SemVer: "not a range"}, auth, ErrInvalidRef},
			{"scp url", "git@example.com:x/y.git", Ref{}, nil, ErrInvalidURL},
			{"ftp url", "ftp://example.com/x", Ref{}, nil, ErrInvalidURL},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := Checkout(ctx, tc.url, tc.ref, tc.auth, artifact.Limits{})
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				if tc.auth != nil && tc.auth.Password != "" && strings.Contains(err.Error(), tc.auth.Password) {
					t.Fatalf("error leaks the password: %v", err)
				}
			})
		}
	})

	t.Run("force push and deleted branch", func(t *testing.T) {
		repo.Run("checkout", "-q", "feature")
		repo.Run("reset", "-q", "--hard", c1)
		c4 := repo.Commit("rewritten", map[string]string{"d.yaml": "d\n"})
		c, err := Checkout(ctx, repo.URL(), Ref{Branch: "feature"}, auth, artifact.Limits{})
		if err != nil || c.Hash != c4 {
			t.Fatalf("after force push: %v %v", c, err)
		}
		repo.Run("push", "-q", "origin", "--delete", "feature")
		repo.Run("checkout", "-q", "main")
		if _, err := Checkout(ctx, repo.URL(), Ref{Branch: "feature"}, auth, artifact.Limits{}); !errors.Is(err, ErrRefNotFound) {
			t.Fatalf("deleted branch: %v", err)
		}
	})
}

func TestCheckoutManyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("big", "main")
	files := map[string]string{}
	for i := 0; i < 10000; i++ {
		files[fmt.Sprintf("d%02d/f%05d.yaml", i%50, i)] = fmt.Sprintf("i: %d\n", i)
	}
	repo.Commit("many", files)
	c, err := Checkout(context.Background(), repo.URL(), Ref{Branch: "main"}, nil, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 10000 {
		t.Fatalf("got %d files", len(c.Files))
	}
}
