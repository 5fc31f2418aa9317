package sopsfile

import (
	"context"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops/formats"
)

// TestFormatLimitsUndetected pins two edits the SOPS format lets through
// (issue 17 item 12, as in sops; docs/security.md, "Limits of the SOPS
// format"): each decrypts, without an error, to data that differs from what
// was encrypted. If one starts failing, the format (or lacre) changed and
// the documentation must say so.
func TestFormatLimitsUndetected(t *testing.T) {
	ctx := context.Background()
	k := newAgeKey(t)
	const plain = "port: \"5432\"\nuser_unencrypted: admin\nname_unencrypted: db\n"
	enc, err := Encrypt(ctx, []byte(plain), EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{k.r}}})
	if err != nil {
		t.Fatal(err)
	}
	opts := DecryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Identities: []keys.Identity{k.id}}
	for _, tc := range []struct {
		name, from, to, want string
	}{
		// The type field is outside the AEAD's additional data and the MAC
		// hashes the value's bytes only.
		{"type str to int", "type:str]", "type:int]", "port: 5432\n"},
		// The MAC hashes the values back to back, without separators.
		{"bytes moved between values in clear", "admin\nname_unencrypted: db", "admind\nname_unencrypted: b", "user_unencrypted: admind\nname_unencrypted: b\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The first occurrence: the port value comes before the MAC,
			// which is also type:str.
			s := string(enc)
			if !strings.Contains(s, tc.from) {
				t.Fatalf("want %q in the encrypted file:\n%s", tc.from, s)
			}
			got, err := Decrypt(ctx, []byte(strings.Replace(s, tc.from, tc.to, 1)), opts)
			if err != nil {
				t.Fatalf("the edit was detected (the format limit is gone; update docs/security.md): %v", err)
			}
			if string(got) == plain || !strings.Contains(string(got), tc.want) {
				t.Fatalf("decrypted to\n%s\nwant it to contain\n%s", got, tc.want)
			}
		})
	}
}
