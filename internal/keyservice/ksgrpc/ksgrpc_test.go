package ksgrpc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
)

// TestKeyRoundTrip checks that every master key type crosses the protocol
// with its identifying fields.
func TestKeyRoundTrip(t *testing.T) {
	for _, s := range []*keys.Stanza{
		{Type: keys.TypeAge, Fields: map[string]string{"recipient": "age1xyz"}},
		{Type: keys.TypePGP, Fields: map[string]string{"fp": "ABCDEF"}},
		{Type: keys.TypeKMS, Fields: map[string]string{"arn": "arn:aws:kms:eu-west-1:1:key/k"}},
		{Type: keys.TypeKMS, Fields: map[string]string{"arn": "arn:aws:kms:eu-west-1:1:key/k", "role": "arn:aws:iam::1:role/r", "aws_profile": "p"}, Context: map[string]string{"a": "b"}},
		{Type: keys.TypeGCPKMS, Fields: map[string]string{"resource_id": "projects/p/locations/l/keyRings/r/cryptoKeys/k"}},
		{Type: keys.TypeAzureKV, Fields: map[string]string{"vault_url": "https://v.vault.azure.net", "name": "k", "version": "1"}},
		{Type: keys.TypeVault, Fields: map[string]string{"vault_address": "http://127.0.0.1:8200", "engine_path": "transit", "key_name": "k"}},
		{Type: keys.TypeHCKMS, Fields: map[string]string{"key_id": "eu:uuid"}},
	} {
		k, err := toKey(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := fromKey(k); !reflect.DeepEqual(got, s) {
			t.Errorf("%s: round trip gives %+v, want %+v", s.Type, got, s)
		}
	}
	if _, err := toKey(&keys.Stanza{Type: "nope"}); err == nil {
		t.Error("an unknown type has a Key")
	}
}

type ageSource struct{ id *age.X25519Identity }

func (a ageSource) RecipientFromStanza(_ context.Context, s *keys.Stanza) (keys.Recipient, error) {
	return agekeys.RecipientFromStanza(s)
}

func (a ageSource) Identities() []keys.Identity {
	ids, err := agekeys.ParseIdentities(strings.NewReader(a.id.String()))
	if err != nil {
		panic(err)
	}
	return ids
}

// TestServeDial runs a server over a unix socket and its client: wrap,
// unwrap, a wrong key, a refused prompt.
func TestServeDial(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "ks.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var answers bytes.Buffer
	var asked strings.Builder
	srv := &Server{Svc: keyservice.Local{Src: ageSource{id}}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, lis) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	c, err := Dial("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := &keys.Stanza{Type: keys.TypeAge, Fields: map[string]string{"recipient": id.Recipient().String()}}
	dataKey := bytes.Repeat([]byte{7}, 32)
	ct, err := c.Encrypt(t.Context(), key, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(ct), "-----BEGIN AGE ENCRYPTED FILE-----") {
		t.Fatalf("ciphertext is not an armored age file: %.40q", ct)
	}
	pt, err := c.Decrypt(t.Context(), key, ct)
	if err != nil || !bytes.Equal(pt, dataKey) {
		t.Fatalf("Decrypt: %v", err)
	}

	other, _ := age.GenerateX25519Identity()
	otherKey := &keys.Stanza{Type: keys.TypeAge, Fields: map[string]string{"recipient": other.Recipient().String()}}
	ct2, err := c.Encrypt(t.Context(), otherKey, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(t.Context(), otherKey, ct2); err == nil || bytes.Contains([]byte(err.Error()), dataKey) {
		t.Fatalf("Decrypt with a key the server lacks: %v", err)
	}

	// A refused prompt is PermissionDenied, and the request is not served.
	answers.WriteString("maybe\nn\n")
	srv.Prompt = &Prompt{In: &answers, Out: &asked}
	_, err = c.Decrypt(t.Context(), key, ct)
	var re *remoteError
	if !errors.As(err, &re) || re.code != "PermissionDenied" {
		t.Fatalf("refused prompt: %v", err)
	}
	if n := strings.Count(asked.String(), "Respond to request? (y/n)"); n != 2 {
		t.Errorf("asked %d times, want 2 (an unclear answer asks again):\n%s", n, asked.String())
	}
	answers.WriteString("y\n")
	if _, err := c.Decrypt(t.Context(), key, ct); err != nil {
		t.Fatalf("accepted prompt: %v", err)
	}
}

// TestNoKey checks sops's answers to a request without a key.
func TestNoKey(t *testing.T) {
	srv := &Server{}
	_, err := srv.Encrypt(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), "Must provide a key") {
		t.Errorf("no key: %v", err)
	}
}
