package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keystest"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

func TestConformance(t *testing.T) {
	srv := vaulttest.New("root-token-secret")
	defer srv.Close()
	uri := srv.URL + "/v1/transit/keys/sops"
	r, err := NewRecipient(uri, Options{Token: srv.Token})
	if err != nil {
		t.Fatal(err)
	}
	keystest.Run(t, keystest.Backend{
		Type: keys.TypeVault, Recipient: r, Identity: NewIdentity(Options{Token: srv.Token}),
		WrongIdentity: NewIdentity(Options{Token: "wrong-token-value"}),
		Secrets:       []string{srv.Token, "wrong-token-value"},
		Tamper: func(s *keys.Stanza) *keys.Stanza {
			c := s.Clone()
			c.Enc = c.Enc[:len(c.Enc)-6] + "AAAAAA"
			return c
		},
	})
}

func TestAllowlistAndErrors(t *testing.T) {
	srv := vaulttest.New("tok")
	defer srv.Close()
	ctx := context.Background()
	r, _ := NewRecipient(srv.URL+"/v1/transit/keys/k", Options{Token: "tok"})
	s, err := r.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Enc, "vault:v1:") || s.Field("engine_path") != "transit" || s.Field("key_name") != "k" {
		t.Fatalf("stanza: %+v", s)
	}
	before := srv.Decrypts.Load()
	_, err = NewIdentity(Options{Token: "tok", Allowlist: mustAllowlist(t, "https://other.example")}).Unwrap(ctx, s)
	if err == nil || !strings.Contains(err.Error(), "allowlist") || srv.Decrypts.Load() != before {
		t.Fatalf("allowlist: %v (requests %d)", err, srv.Decrypts.Load()-before)
	}
	if _, err := NewIdentity(Options{Token: "tok", Allowlist: mustAllowlist(t, "none")}).Unwrap(ctx, s); err == nil {
		t.Fatal("allowlist none allowed a request")
	}
	if _, err := NewIdentity(Options{Token: "tok", Allowlist: mustAllowlist(t, srv.URL)}).Unwrap(ctx, s); err != nil {
		t.Fatal(err)
	}
	_, err = NewIdentity(Options{Token: "bad-token-xyz"}).Unwrap(ctx, s)
	if err == nil || !strings.Contains(err.Error(), "permission denied") || strings.Contains(err.Error(), "bad-token-xyz") {
		t.Fatalf("bad token: %v", err)
	}
	for _, bad := range []string{"https://vault/transit/keys/x", "https://vault/v1/transit/x", "not a url"} {
		if _, err := NewRecipient(bad, Options{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSopsInterop points the real sops CLI at the local transit server:
// lacre unwraps sops's stanza, and sops decrypts a file whose stanza lacre
// wrapped for the same data key.
func TestSopsInterop(t *testing.T) {
	sops := keystest.Sops(t)
	srv := vaulttest.New("root")
	defer srv.Close()
	srv.CreateKey("sops", "firstkey")
	uri := srv.URL + "/v1/sops/keys/firstkey"
	dir := t.TempDir()
	f := filepath.Join(dir, "s.yaml")
	os.WriteFile(f, []byte("password: hunter2\n"), 0o600)
	env := append(os.Environ(), "VAULT_TOKEN=root", "SOPS_DISABLE_VERSION_CHECK=1", "HOME="+dir)
	cmd := exec.Command(sops, "encrypt", "--hc-vault-transit", uri, f)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sops encrypt: %v\n%s", err, out)
	}
	enc := regexp.MustCompile(`enc: (vault:v\d+:\S+)`).FindStringSubmatch(string(out))
	if enc == nil {
		t.Fatalf("no vault stanza in:\n%s", out)
	}
	ctx := context.Background()
	theirs := &keys.Stanza{Type: keys.TypeVault, Enc: enc[1], Fields: map[string]string{"vault_address": srv.URL, "engine_path": "sops", "key_name": "firstkey"}}
	dataKey, err := NewIdentity(Options{Token: "root"}).Unwrap(ctx, theirs)
	if err != nil || len(dataKey) != 32 {
		t.Fatalf("unwrap sops's stanza: %v", err)
	}
	r, _ := NewRecipient(uri, Options{Token: "root"})
	ours, err := r.Wrap(ctx, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	swapped := bytes.Replace(out, []byte(enc[1]), []byte(ours.Enc), 1)
	os.WriteFile(f, swapped, 0o600)
	cmd = exec.Command(sops, "decrypt", f)
	cmd.Env = env
	plain, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(plain), "password: hunter2") {
		t.Fatalf("sops decrypt with lacre's stanza: %v\n%s", err, plain)
	}
	_ = rand.Reader
}
