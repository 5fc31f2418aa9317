package vault

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

func mustAllowlist(t *testing.T, s string) []string {
	t.Helper()
	l, err := ParseAllowlist(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAddressAllowed: scheme, host and port compare exactly (default
// ports explicit), the path by prefix on segment boundaries, and user
// information is refused.
func TestAddressAllowed(t *testing.T) {
	for _, c := range []struct {
		allow, request string
		ok             bool
	}{
		{"http://127.0.0.1:8200", "http://127.0.0.1:8200/v1/transit/decrypt/k", true},
		{"http://127.0.0.1:8200", "http://127.0.0.1:8200@127.0.0.1:9999/v1/transit/decrypt/k", false},
		{"http://127.0.0.1:8200", "http://127.0.0.1:82001/v1/transit/decrypt/k", false},
		{"http://127.0.0.1:8200", "http://127.0.0.1:9999/v1/transit/decrypt/k", false},
		{"http://127.0.0.1:8200", "https://127.0.0.1:8200/v1/transit/decrypt/k", false},
		{"http://127.0.0.1:8200", "http://user@127.0.0.1:8200/v1/transit/decrypt/k", false},
		{"https://vault.corp", "https://vault.corp.evil.net/v1/transit/decrypt/k", false},
		{"https://vault.corp", "https://vault.corp:443/v1/transit/decrypt/k", true},
		{"https://vault.corp:443", "https://VAULT.corp/v1/transit/decrypt/k", true},
		{"https://vault.corp", "https://vault.corp:8443/v1/transit/decrypt/k", false},
		{"http://vault.corp", "http://vault.corp:80/v1/transit/decrypt/k", true},
		{"https://vault.corp/v1/transit", "https://vault.corp/v1/transit/decrypt/k", true},
		{"https://vault.corp/v1/transit/", "https://vault.corp/v1/transit/decrypt/k", true},
		{"https://vault.corp/v1/transit", "https://vault.corp/v1/transitx/decrypt/k", false},
		{"https://vault.corp/v1/transit", "https://vault.corp/v1/transit/../sys/decrypt/k", false},
		{"https://vault.corp/v1/transit", "https://vault.corp/v1/transit/%2e%2e/sys/decrypt/k", false},
		{"https://vault.corp", "https://vault.corp/v1/transit/decrypt/k?x=1", false},
		{"none", "https://vault.corp/v1/transit/decrypt/k", false},
		{"all", "https://vault.corp/v1/transit/decrypt/k", true},
		{"all", "http://127.0.0.1:8200@127.0.0.1:9999/v1/transit/decrypt/k", false},
		{"https://a.example, https://vault.corp", "https://vault.corp/v1/t/decrypt/k", true},
	} {
		err := AddressAllowed(mustAllowlist(t, c.allow), c.request)
		if (err == nil) != c.ok {
			t.Errorf("allow %q, request %q: %v", c.allow, c.request, err)
		}
	}
	for _, bad := range []string{"http://u:p@vault:8200", "http://127.0.0.1:8200@127.0.0.1:9999", "vault.corp", "ftp://vault", "https://vault/?x"} {
		if _, err := ParseAllowlist(bad); err == nil {
			t.Errorf("allowlist entry %q accepted", bad)
		}
	}
}

// TestTokenNotSentElsewhere: with http://127.0.0.1:<vault> allowed, a
// stanza whose vault_address is http://127.0.0.1:<vault>@127.0.0.1:<other>
// sends nothing to the other server (two servers on loopback).
func TestTokenNotSentElsewhere(t *testing.T) {
	srv := vaulttest.New("canary-vault-token")
	defer srv.Close()
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.Contains(r.Header.Get("X-Vault-Token"), "canary") {
			t.Error("the token reached the other server")
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	defer other.Close()
	ctx := context.Background()
	r, _ := NewRecipient(srv.URL+"/v1/transit/keys/k", Options{Token: srv.Token})
	s, err := r.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	hostile := srv.URL + "@" + strings.TrimPrefix(other.URL, "http://")
	for _, allow := range []string{srv.URL, "all"} {
		id := NewIdentity(Options{Token: srv.Token, Allowlist: mustAllowlist(t, allow)})
		h := &keys.Stanza{Type: keys.TypeVault, Enc: s.Enc, Fields: map[string]string{"vault_address": hostile, "engine_path": "transit", "key_name": "k"}}
		if _, err := id.Unwrap(ctx, h); err == nil || strings.Contains(err.Error(), srv.Token) {
			t.Fatalf("allow %q: unwrap via %q: %v", allow, hostile, err)
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("allow %q: %d requests reached the other server", allow, n)
		}
		if _, err := id.Unwrap(ctx, s); err != nil {
			t.Fatalf("allow %q: the allowed server: %v", allow, err)
		}
	}
}
