package sopsfile

import (
	"bytes"
	"context"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops/formats"
)

// FuzzEncryptDecrypt checks decrypt(encrypt(x)) == x for every store:
// whatever a store loads as plain text, Encrypt accepts or refuses with an
// error, and Decrypt of the result gives back exactly what the store emits
// for the plain file.
func FuzzEncryptDecrypt(f *testing.F) {
	for i, d := range tamperDocs {
		f.Add(uint8(i), []byte(d.plain))
	}
	f.Add(uint8(0), []byte("a: &x [1, 2]\nb: *x\nc_unencrypted: clear\n"))
	f.Add(uint8(1), []byte(`[{"a": null, "b": [1e3, -0.5, "x"]}]`))
	f.Add(uint8(2), []byte("export A='quoted'\nB=\"x\\ny\"\n"))
	k := newAgeKey(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		format := tamperDocs[int(which)%len(tamperDocs)].format
		store := formats.NewStore(format, formats.Options{})
		branches, err := store.LoadPlainFile(data)
		if err != nil {
			return
		}
		want, err := store.EmitPlainFile(branches)
		if err != nil {
			return
		}
		// Some inputs do not survive the store's own plain write and read
		// (gopkg.in/ini.v1, which sops uses too, cannot quote a key holding
		// both a backtick and a quote); encryption cannot be asked to.
		if again, err := store.LoadPlainFile(want); err != nil {
			return
		} else if want2, err := store.EmitPlainFile(again); err != nil || !bytes.Equal(want2, want) {
			return
		}
		enc, err := Encrypt(ctx, data, EncryptOptions{InputFormat: format, OutputFormat: format, Groups: [][]keys.Recipient{{k.r}}})
		if err != nil {
			return
		}
		got, err := Decrypt(ctx, enc, DecryptOptions{InputFormat: format, OutputFormat: format, Identities: []keys.Identity{k.id}})
		if err != nil {
			t.Fatalf("%s: an encrypted file does not decrypt: %v\n%s", format, err, enc)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: decrypt(encrypt(x)) != x\ngot  %q\nwant %q", format, got, want)
		}
	})
}
