package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lacre/lacre/internal/kubesecret"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// Provenance for --require-encrypted-secrets: the build remembers (as
// hashes) the values that came out of decryption, and every value of every
// Secret it emits must be one of them (kubesecret.Unproven). A Secret built
// from anything else (a file kustomize reads whatever its name, a List, a
// patch, a generator literal, stringData left in clear) is refused.

// proven is the set of SHA-256 hashes of decrypted values.
type proven map[[32]byte]bool

func (p proven) add(v string) {
	if v != "" {
		p[sha256.Sum256([]byte(v))] = true
	}
}

func (p proven) has(v string) bool { return p[sha256.Sum256([]byte(v))] }

// vouches reports whether a Secret's value came from decryption: as it is,
// or (in data) base64-encoded, as a generator writes a decrypted file or
// dotenv value. A value still in its ENC[...] form reveals nothing.
func (p proven) vouches(field, v string) bool {
	if p.has(v) || sops.IsEncrypted(v) {
		return true
	}
	if field != "data" {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	return err == nil && p.has(string(raw))
}

// checkSecret refuses a built Secret with a value that did not come from
// decryption.
func (p proven) checkSecret(u *unstructured.Unstructured) error {
	if bad := kubesecret.Unproven(u.Object, p.vouches); len(bad) > 0 {
		return fmt.Errorf("built %s %s/%s %w: %s not decrypted from Git", u.GetKind(), u.GetNamespace(), u.GetName(), ErrPlaintextSecret, strings.Join(bad, ", "))
	}
	return nil
}

// decryptFile decrypts an encrypted file and records its encrypted values
// (and, when it had any, the whole plaintext file, which a generator may
// read as one value).
func (p proven) decryptFile(ctx context.Context, data []byte, f formats.Format, opts Options) ([]byte, error) {
	tree, err := sopsfile.LoadView(data, f, formats.Options{})
	if err != nil {
		return nil, err
	}
	var enc []bool
	var encKeys []string // top-level keys with an encrypted value (dotenv lines)
	for _, b := range tree.Branches {
		for _, it := range b {
			n := len(enc)
			walkLeaves(it.Value, func(v any) {
				s, ok := v.(string)
				enc = append(enc, ok && sops.IsEncrypted(s))
			})
			if k, ok := it.Key.(string); ok && len(enc) > n && enc[n] {
				encKeys = append(encKeys, k)
			}
		}
	}
	if err := sopsfile.DecryptTreeOnly(ctx, tree, opts.Identities, opts.DecryptionOrder, false); err != nil {
		return nil, err
	}
	i, some := 0, false
	for _, b := range tree.Branches {
		for _, it := range b {
			walkLeaves(it.Value, func(v any) {
				if enc[i] {
					some = true
					p.add(fmt.Sprint(v))
				}
				i++
			})
		}
	}
	plain, err := formats.NewStore(f, formats.Options{}).EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, err
	}
	if some {
		p.add(string(plain))
	}
	if f == formats.Dotenv {
		p.dotenvValues(plain, encKeys)
	}
	return plain, nil
}

// dotenvValues records the text after '=' of the lines of keys, as
// kustomize's env reader takes it (escaped, not unescaped).
func (p proven) dotenvValues(plain []byte, keys []string) {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	for line := range bytes.Lines(plain) {
		k, v, ok := strings.Cut(strings.TrimRight(string(line), "\r\n"), "=")
		if ok && want[k] {
			p.add(v)
		}
	}
}

// walkLeaves calls fn for each scalar below v, in order.
func walkLeaves(v any, fn func(any)) {
	switch x := v.(type) {
	case sops.TreeBranch:
		for _, it := range x {
			walkLeaves(it.Value, fn)
		}
	case []any:
		for _, e := range x {
			walkLeaves(e, fn)
		}
	default:
		fn(v)
	}
}
