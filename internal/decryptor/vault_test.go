package decryptor

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

// TestVaultAddressDefault: without --sops-vault-allowlist a decryption
// Secret's Vault token goes only to the addresses the Secret names in
// VaultAddressEntry; any other address a file names is refused before any
// request, with a message naming the address and how to allow it.
func TestVaultAddressDefault(t *testing.T) {
	srv := vaulttest.New("tenant-vault-token")
	defer srv.Close()
	ctx := context.Background()
	r, err := vault.NewRecipient(srv.URL+"/v1/transit/keys/k", vault.Options{Token: srv.Token})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	unwrap := func(o Options, data map[string]string) error {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "sops-hcvault"}, Data: map[string][]byte{}}
		for k, v := range data {
			sec.Data[k] = []byte(v)
		}
		ids, err := o.SecretIdentities(sec)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err = id.Unwrap(ctx, s); err == nil {
				return nil
			}
		}
		if err != nil && strings.Contains(err.Error(), srv.Token) {
			t.Fatalf("the token is in %v", err)
		}
		return err
	}
	token := map[string]string{VaultTokenEntry: srv.Token}
	named := map[string]string{VaultTokenEntry: srv.Token, VaultAddressEntry: "https://other.example,\n" + srv.URL + "\n"}
	other := map[string]string{VaultTokenEntry: srv.Token, VaultAddressEntry: "https://other.example"}

	for name, data := range map[string]map[string]string{"no address entry": token, "another address": other} {
		err := unwrap(Options{}, data)
		if err == nil || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), VaultAddressEntry) || !strings.Contains(err.Error(), "--sops-vault-allowlist") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := srv.Decrypts.Load(); n != 0 {
		t.Fatalf("%d requests reached a Vault the Secret does not name", n)
	}
	if err := unwrap(Options{}, named); err != nil {
		t.Errorf("named address: %v", err)
	}
	if err := unwrap(Options{VaultAnyAddress: true}, token); err != nil {
		t.Errorf("any address: %v", err)
	}
	// The operator's list decides when given.
	if err := unwrap(Options{VaultAllowlist: []string{"https://other.example"}}, named); err == nil || !strings.Contains(err.Error(), "--sops-vault-allowlist") {
		t.Errorf("operator list: %v", err)
	}
	if err := unwrap(Options{VaultAllowlist: []string{srv.URL}}, token); err != nil {
		t.Errorf("operator list: %v", err)
	}
	for _, bad := range []string{"http://127.0.0.1:8200@127.0.0.1:9999", "all", "vault.example"} {
		err := unwrap(Options{}, map[string]string{VaultTokenEntry: srv.Token, VaultAddressEntry: bad})
		if err == nil || !strings.Contains(err.Error(), "entry \""+VaultAddressEntry+"\"") {
			t.Errorf("address entry %q: %v", bad, err)
		}
		if Check(VaultAddressEntry, []byte(bad)) == nil {
			t.Errorf("Check(%q) passed", bad)
		}
	}
}
