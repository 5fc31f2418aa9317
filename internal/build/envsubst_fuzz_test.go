package build

import (
	"strings"
	"testing"
)

// FuzzExpand runs postBuild substitution on arbitrary text: no panic, a
// single-line error, and text without '$' comes back unchanged.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"${v}", "$${v}", "${v:-w}", "${v#*/}", "${v%%.*}", "${v/#a/b}", "${v//a/${w}}", "${v:1:-1}", "${#v}", "${v^^}", "${", "${v:", "a$b", "${v[}", "${v/[}"} {
		f.Add(s, "a/b.c")
	}
	f.Fuzz(func(t *testing.T, s, val string) {
		lookup := func(name string) (string, bool) {
			if name == "v" || name == "w" {
				return val, true
			}
			return "", false
		}
		out, err := expand(s, lookup)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if !strings.Contains(s, "$") && out != s {
			t.Fatalf("text without variables changed: %q -> %q", s, out)
		}
	})
}
