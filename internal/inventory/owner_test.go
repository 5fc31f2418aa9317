package inventory

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRuleOwners: the rules the controller shares with the CLI are
// spelled by their owner only. No other product file builds or splits an
// inventory ID ("<ns>_<name>_<group>_<kind>"), spells the owner labels or
// compares the ssa annotation, or spells a fixed entry name of the
// decryption Secret (internal/decryptor's constants).
func TestRuleOwners(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	owners := []struct {
		dir       string
		forbidden *regexp.Regexp
	}{
		{"internal/inventory", regexp.MustCompile(`%s_%s_%s_%s|Split\([^)]*"_"\)|"kustomize\.toolkit\.fluxcd\.io/(name|namespace)"|SSAAnnotation\] == "`)},
		{"internal/decryptor", regexp.MustCompile(`"sops\.(vault-token|vault-address|aws-kms|azure-kv|gcp-kms)"|"\*?\.asc"`)},
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, o := range owners {
			if filepath.ToSlash(filepath.Dir(rel)) == o.dir {
				continue
			}
			if m := o.forbidden.Find(data); m != nil {
				t.Errorf("%s: %s (belongs to %s)", rel, m, o.dir)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
