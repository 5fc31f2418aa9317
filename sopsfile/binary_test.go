package sopsfile

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops/formats"
)

// A binary file's metadata has no selection rule, whatever the options, as
// sops 3.13 writes it; its one value is encrypted and decrypts.
func TestBinaryMetadataHasNoSelection(t *testing.T) {
	ctx := context.Background()
	k := newAgeKey(t)
	plain := []byte("data\x00_unencrypted")
	enc, err := Encrypt(ctx, plain, EncryptOptions{InputFormat: formats.Binary, OutputFormat: formats.Binary,
		Groups: [][]keys.Recipient{{k.r}}, Rules: Rules{UnencryptedSuffix: "data", MACOnlyEncrypted: true}})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data string         `json:"data"`
		Sops map[string]any `json:"sops"`
	}
	if err := json.Unmarshal(enc, &doc); err != nil {
		t.Fatal(err)
	}
	for name := range doc.Sops {
		switch name {
		case "age", "lastmodified", "mac", "version":
		default:
			t.Errorf("metadata key %q (sops writes age, lastmodified, mac, version)", name)
		}
	}
	if !bytes.HasPrefix([]byte(doc.Data), []byte("ENC[AES256_GCM,")) {
		t.Error("the value is not encrypted")
	}
	out, err := Decrypt(ctx, enc, DecryptOptions{InputFormat: formats.Binary, OutputFormat: formats.Binary, Identities: []keys.Identity{k.id}})
	if err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("decrypt: %v", err)
	}
}
