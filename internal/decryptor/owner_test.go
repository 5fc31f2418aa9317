package decryptor

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOnlyOwner: the fixed entry names of the decryption Secret are
// spelled here only (other product code uses the constants).
func TestOnlyOwner(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := regexp.MustCompile(`"sops\.(vault-token|aws-kms|azure-kv|gcp-kms)"|"\*?\.asc"`)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" || p == filepath.Join(root, "internal", "decryptor") {
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
			t.Errorf("%s: %s (the decryption Secret's entry names belong to internal/decryptor)", rel, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
