package cli

import (
	"go/build"
	"strings"
	"testing"
)

// TestLayout checks the import rules of the CLI packages: none imports
// package cli (its file commands are composed in cmd/); the cloud-key
// protocol depends on nothing else internal but the key service's
// contract; the key sources only on them.
func TestLayout(t *testing.T) {
	const mod = "github.com/lacre/lacre/"
	for _, tc := range []struct {
		dir     string
		allowed []string // the packages under internal/ it may import
	}{
		{"cliapp", []string{"internal/cli/cloudproto", "internal/cli/keysource", "internal/keyservice"}},
		{"keysource", []string{"internal/cli/cloudproto", "internal/keyservice"}},
		{"cloudproto", []string{"internal/keyservice"}},
		{"kscmd", []string{"internal/cli/cliapp", "internal/cli/keysource", "internal/keyservice", "internal/keyservice/ksgrpc"}},
		{"cloudkeys", []string{"internal/cli/cloudproto", "internal/cli/keysource"}},
		{"ocicmd", []string{"internal/cli/cliapp", "internal/artifact", "internal/kubesecret", "internal/ociartifact"}},
		{"cluster", nil}, // checked for package cli only
	} {
		pkg, err := build.ImportDir(tc.dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			rel, ok := strings.CutPrefix(imp, mod)
			if !ok || !strings.HasPrefix(rel, "internal/") {
				continue
			}
			if rel == "internal/cli" {
				t.Errorf("internal/cli/%s imports its parent internal/cli", tc.dir)
				continue
			}
			if tc.dir == "cluster" {
				continue
			}
			ok = false
			for _, a := range tc.allowed {
				ok = ok || rel == a
			}
			if !ok {
				t.Errorf("internal/cli/%s imports %s", tc.dir, rel)
			}
		}
	}
}
