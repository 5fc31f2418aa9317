package inventory

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOnlyOwner: inventory IDs are formatted and parsed here only, and
// the owner labels and annotation values spelled here only: no other
// product file builds "<ns>_<name>_<group>_<kind>" or splits on "_", or
// spells the owner labels.
func TestOnlyOwner(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := regexp.MustCompile(`%s_%s_%s_%s|Split\([^)]*"_"\)|"kustomize\.toolkit\.fluxcd\.io/(name|namespace)"|SSAAnnotation\] == "`)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" || p == filepath.Join(root, "internal", "inventory") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if m := forbidden.Find(data); m != nil {
			rel, _ := filepath.Rel(root, p)
			t.Errorf("%s: %s (inventory IDs, owner labels and apply/prune rules belong to internal/inventory)", rel, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
