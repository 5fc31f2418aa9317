package cli

// check secrets' type warning (issue 17 item 12): the type field of an
// ENC[...] value is not authenticated, and the MAC hashes a value's bytes,
// not its type, so "123" encrypted as str decrypts as the int 123 after an
// edit of type:str to type:int, without an error (as in sops). Nothing can
// tell such an edit in general; in a Kubernetes Secret manifest it can be
// seen, since every value of data and stringData is a string.

import (
	"fmt"

	"github.com/lacre/lacre/sops"
)

// secretTypeProblems lists the encrypted values under data and stringData
// of the Secret documents of tree (values still encrypted) whose ENC type is
// not str, by path. A document whose kind is encrypted is not looked at.
func secretTypeProblems(tree *sops.Tree) []string {
	var out []string
	for _, doc := range tree.Branches {
		if kind, _ := branchValue(doc, "kind").(string); kind != "Secret" {
			continue
		}
		for _, field := range []string{"data", "stringData"} {
			out = appendNonStr(out, field, branchValue(doc, field))
		}
	}
	return out
}

func branchValue(b sops.TreeBranch, key string) any {
	for _, it := range b {
		if k, ok := it.Key.(string); ok && k == key {
			return it.Value
		}
	}
	return nil
}

func appendNonStr(out []string, path string, v any) []string {
	switch v := v.(type) {
	case sops.TreeBranch:
		for _, it := range v {
			if k, ok := it.Key.(string); ok {
				out = appendNonStr(out, path+"."+k, it.Value)
			}
		}
	case []any:
		for i, x := range v {
			out = appendNonStr(out, fmt.Sprintf("%s[%d]", path, i), x)
		}
	case string:
		if !sops.IsEncrypted(v) {
			return out
		}
		if ev, err := sops.ParseEncrypted(v); err == nil && ev.Type != "str" {
			out = append(out, fmt.Sprintf("%s: %q", path, ev.Type))
		}
	}
	return out
}
