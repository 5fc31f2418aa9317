package sopsfile

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops/formats"
)

// bigYAML is about 1 MB with about 12,000 values, like bench/crypto's file.
func bigYAML() []byte {
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "service%04d:\n", i)
		fmt.Fprintf(&sb, "    host: host-%d.internal.example.com\n    port: %d\n    enabled: true\n    ratio: 0.%d\n", i, 1000+i, i+1)
		fmt.Fprintf(&sb, "    user: user%d\n    password: %s\n    token: %s\n", i, strings.Repeat("p", 40), strings.Repeat("t", 300))
		fmt.Fprintf(&sb, "    tags:\n        - a%d\n        - b%d\n        - c%d\n", i, i, i)
		fmt.Fprintf(&sb, "    note: %s\n    url: https://example.com/%d/path\n", strings.Repeat("n", 200), i)
	}
	return []byte(sb.String())
}

func BenchmarkEncrypt1MB(b *testing.B) {
	k := newAgeKey(b)
	plain := bigYAML()
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := Encrypt(context.Background(), plain, EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{k.r}}}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt1MB(b *testing.B) {
	k := newAgeKey(b)
	plain := bigYAML()
	enc, err := Encrypt(context.Background(), plain, EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{k.r}}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	opts := DecryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Identities: []keys.Identity{k.id}}
	for b.Loop() {
		if _, err := Decrypt(context.Background(), enc, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptSecret(b *testing.B) {
	k := newAgeKey(b)
	plain := []byte("apiVersion: v1\nkind: Secret\nmetadata:\n    name: s\nstringData:\n    username: admin\n    password: hunter2\n")
	enc, err := Encrypt(context.Background(), plain, EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{k.r}}, Rules: Rules{EncryptedRegex: "^(data|stringData)$"}})
	if err != nil {
		b.Fatal(err)
	}
	opts := DecryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Identities: []keys.Identity{k.id}}
	for b.Loop() {
		if _, err := Decrypt(context.Background(), enc, opts); err != nil {
			b.Fatal(err)
		}
	}
}
