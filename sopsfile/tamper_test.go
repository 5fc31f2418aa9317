package sopsfile

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
)

const canary = "CANARY-7f3a9c-secret"

const tamperDoc = `secret: ` + canary + `
nested:
    other: ` + canary + `-2
list:
    - first-` + canary + `
    - second-` + canary + `
plain_unencrypted: visible
`

// TestTamperIsRefused changes one part of an encrypted file at a time; each
// change must fail to decrypt, with an error that names no secret.
func TestTamperIsRefused(t *testing.T) {
	ctx := context.Background()
	k := newAgeKey(t)
	enc, err := Encrypt(ctx, []byte(tamperDoc), EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{k.r}}})
	if err != nil {
		t.Fatal(err)
	}
	opts := DecryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Identities: []keys.Identity{k.id}}
	if _, err := Decrypt(ctx, enc, opts); err != nil {
		t.Fatal(err)
	}
	field := func(name string) *regexp.Regexp {
		return regexp.MustCompile(`(secret: ENC\[AES256_GCM,[^\]]*` + name + `:)([A-Za-z0-9+/])`)
	}
	flip := func(re *regexp.Regexp) func(string) string {
		return func(s string) string {
			return re.ReplaceAllStringFunc(s, func(m string) string {
				last := m[len(m)-1]
				repl := byte('A')
				if last == 'A' {
					repl = 'B'
				}
				return m[:len(m)-1] + string(repl)
			})
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(string) string
		want   []error
	}{
		{"ciphertext", flip(field("data")), []error{sops.ErrDecryptValue}},
		{"iv", flip(field("iv")), []error{sops.ErrDecryptValue}},
		{"tag", flip(field("tag")), []error{sops.ErrDecryptValue}},
		{"mac", flip(regexp.MustCompile(`(mac: ENC\[AES256_GCM,data:)([A-Za-z0-9+/])`)), []error{sops.ErrMACDecrypt}},
		{"key name", func(s string) string { return strings.Replace(s, "secret:", "secreT:", 1) }, []error{sops.ErrDecryptValue}},
		{"nested key", func(s string) string { return strings.Replace(s, "other:", "0ther:", 1) }, []error{sops.ErrDecryptValue}},
		{"reordered list", func(s string) string {
			lines := strings.Split(s, "\n")
			for i, l := range lines {
				if strings.HasPrefix(l, "    - ENC[") && strings.HasPrefix(lines[i+1], "    - ENC[") {
					lines[i], lines[i+1] = lines[i+1], lines[i]
					break
				}
			}
			return strings.Join(lines, "\n")
		}, []error{sops.ErrMACMismatch}},
		{"unencrypted value", func(s string) string { return strings.Replace(s, "visible", "changed", 1) }, []error{sops.ErrMACMismatch}},
		{"lastmodified", func(s string) string {
			return regexp.MustCompile(`lastmodified: "\d{4}`).ReplaceAllString(s, `lastmodified: "2001`)
		}, []error{sops.ErrMACDecrypt}},
		{"enc swapped with plaintext", func(s string) string {
			return regexp.MustCompile(`secret: ENC\[[^\]]*\]`).ReplaceAllString(s, "secret: "+canary)
		}, []error{sops.ErrNotEncryptedValue}},
		{"age stanza", func(s string) string {
			return regexp.MustCompile(`(-----BEGIN AGE ENCRYPTED FILE-----\n\s+YWdl)`).ReplaceAllString(s, "$1X")
		}, []error{keys.ErrNoKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.mutate(string(enc))
			if bad == string(enc) {
				t.Fatal("mutation did not change the file")
			}
			_, err := Decrypt(ctx, []byte(bad), opts)
			if err == nil {
				t.Fatal("tampered file decrypted")
			}
			ok := false
			for _, w := range tc.want {
				ok = ok || errors.Is(err, w)
			}
			if !ok {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Fatalf("error leaks the canary: %v", err)
			}
		})
	}
}

// TestCanaryNeverInErrors provokes the library's error paths with a canary
// in the data and checks that no message carries it.
func TestCanaryNeverInErrors(t *testing.T) {
	ctx := context.Background()
	k := newAgeKey(t)
	other := newAgeKey(t)
	var errs []error
	add := func(_ []byte, err error) {
		if err == nil {
			t.Errorf("expected an error (case %d)", len(errs))
		}
		errs = append(errs, err)
	}
	enc, _ := Encrypt(ctx, []byte(tamperDoc), EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{k.r}}})
	yamlOpts := DecryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML}
	wrongKey := yamlOpts
	wrongKey.Identities = []keys.Identity{other.id}
	add(Decrypt(ctx, enc, wrongKey))
	add(Decrypt(ctx, enc, yamlOpts))
	right := yamlOpts
	right.Identities = []keys.Identity{k.id}
	add(Decrypt(ctx, []byte(strings.Replace(string(enc), "secret: ENC[", "secret: "+canary+"ENC[", 1)), right))
	add(Decrypt(ctx, []byte(tamperDoc), right))
	add(Decrypt(ctx, []byte("a: ["+canary), right))
	add(Encrypt(ctx, []byte("a: ["+canary), EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{k.r}}}))
	add(Encrypt(ctx, []byte(`{"a": "`+canary+`", "a": 1}`), EncryptOptions{InputFormat: formats.JSON, OutputFormat: formats.JSON, Groups: [][]keys.Recipient{{k.r}}}))
	add(Encrypt(ctx, []byte(canary+"\n"), EncryptOptions{InputFormat: formats.Dotenv, OutputFormat: formats.Dotenv, Groups: [][]keys.Recipient{{k.r}}}))
	add(Encrypt(ctx, []byte(tamperDoc), EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.Dotenv, Groups: [][]keys.Recipient{{k.r}}}))
	add(Encrypt(ctx, []byte(tamperDoc), EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML}))
	for i, err := range errs {
		if err != nil && strings.Contains(err.Error(), canary) {
			t.Errorf("error %d leaks the canary: %v", i, err)
		}
	}
}
