package sops

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLibraryImports asserts the library layers' import rules (test files
// included): sops, keys, rules and sopsfile import nothing under internal/
// or cmd/; keys never imports rules (the .sops.yaml parser); keys/keyref
// uses the standard library only.
func TestLibraryImports(t *testing.T) {
	const mod = "github.com/lacre/lacre/"
	for _, root := range []string{".", "../keys", "../rules", "../sopsfile"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			slash := filepath.ToSlash(path)
			for _, is := range f.Imports {
				imp, _ := strconv.Unquote(is.Path.Value)
				switch {
				case strings.HasPrefix(imp, mod+"internal/") || strings.HasPrefix(imp, mod+"cmd/"):
					t.Errorf("%s imports %s", path, imp)
				case strings.HasPrefix(slash, "../keys/") && imp == mod+"rules":
					t.Errorf("%s imports %s: key backends must not depend on .sops.yaml parsing (use keys/keyref)", path, imp)
				case strings.HasPrefix(slash, "../keys/keyref/") && strings.Contains(strings.Split(imp, "/")[0], "."):
					t.Errorf("%s imports %s: keyref uses the standard library only", path, imp)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
