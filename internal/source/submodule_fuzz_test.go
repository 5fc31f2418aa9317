package source

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSubmodules feeds arbitrary .gitmodules files and submodule URLs: no
// panic; every accepted path is a clean path inside the tree; every
// resolved URL passes ValidateURL, and one without a scheme (a relative
// URL, not user@host:path) stays on the parent's scheme, host and port.
func FuzzSubmodules(f *testing.F) {
	f.Add([]byte("[submodule \"a\"]\n\tpath = a\n\turl = ../a.git\n"), "../a.git")
	f.Add([]byte("[submodule \"..\"]\n\tpath = ../x\n\turl = file:///x\n"), "file:///etc")
	f.Add([]byte("[submodule]\npath=\n"), "git@h:o/r.git")
	f.Add([]byte("garbage ["), "ext::sh -c x")
	f.Add([]byte(""), "./../../@evil.example/x")
	const parent = "https://git.example:8443/org/app.git"
	f.Fuzz(func(t *testing.T, gitmodules []byte, raw string) {
		if subs, err := parseGitmodules(gitmodules); err == nil {
			for _, s := range subs {
				if validTreePath(s.path) != nil || s.url == "" {
					t.Fatalf("accepted %+v", s)
				}
			}
		}
		got, err := ResolveSubmoduleURL(parent, raw)
		if err != nil {
			return
		}
		if ValidateURL(got) != nil {
			t.Fatalf("%q resolved to invalid %q", raw, got)
		}
		if u, _ := url.Parse(got); !strings.Contains(raw, "://") && u.Scheme != "ssh" && !sameOrigin(parent, got) {
			t.Fatalf("relative %q left the parent's host: %q", raw, got)
		}
	})
}
