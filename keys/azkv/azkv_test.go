package azkv

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/azkv/azkvtest"
	"github.com/lacre/lacre/keys/keystest"
	"go.yaml.in/yaml/v3"
)

func testOpts(srv *azkvtest.Server, token string) (Options, *azkvtest.StaticCredential) {
	cred := &azkvtest.StaticCredential{Token: token}
	return Options{Credential: cred, ClientOptions: srv.ClientOptions()}, cred
}

func TestConformance(t *testing.T) {
	srv := azkvtest.New("kv-token-secret-0123")
	defer srv.Close()
	srv.CreateKey("sops")
	opts, _ := testOpts(srv, srv.Token)
	r, err := NewRecipient(srv.KeyURL("sops", ""), opts)
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := testOpts(srv, "wrong-token-value-987")
	keystest.Run(t, keystest.Backend{
		Type: keys.TypeAzureKV, Recipient: r, Identity: NewIdentity(opts),
		WrongIdentity: NewIdentity(wrong),
		Secrets:       []string{srv.Token, "wrong-token-value-987"},
	})
}

// TestWhatTheSDKSent checks the requests the server received: the key name,
// the resolved version and RSA-OAEP-256, after the bearer challenge.
func TestWhatTheSDKSent(t *testing.T) {
	srv := azkvtest.New("tok-abc")
	defer srv.Close()
	v1 := srv.CreateKey("my-key")
	opts, cred := testOpts(srv, "tok-abc")
	ctx := context.Background()
	r, err := NewRecipient(srv.KeyURL("my-key", ""), opts)
	if err != nil {
		t.Fatal(err)
	}
	dataKey := []byte("0123456789abcdef0123456789abcdef")
	s, err := r.Wrap(ctx, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Last(); got != (azkvtest.Request{Op: "encrypt", Name: "my-key", Version: v1, Alg: "RSA-OAEP-256"}) {
		t.Errorf("encrypt request: %+v (version %s)", got, v1)
	}
	if srv.Gets.Load() != 1 || srv.Challenges.Load() < 1 {
		t.Errorf("gets %d, challenges %d", srv.Gets.Load(), srv.Challenges.Load())
	}
	scopes, tenant := cred.Requested()
	if !slices.Equal(scopes, []string{"https://vault.azure.net/.default"}) || tenant != srv.Tenant {
		t.Errorf("token requested for %v tenant %q", scopes, tenant)
	}
	want := map[string]string{"vault_url": srv.URL, "name": "my-key", "version": v1}
	if s.Type != keys.TypeAzureKV || fmt.Sprint(s.Fields) != fmt.Sprint(want) || s.Context != nil {
		t.Errorf("stanza %+v", s)
	}
	if s.ID() != srv.KeyURL("my-key", v1) {
		t.Errorf("id %q", s.ID())
	}
	if _, err := time.Parse(time.RFC3339, s.CreatedAt); err != nil || !strings.HasSuffix(s.CreatedAt, "Z") {
		t.Errorf("created_at %q", s.CreatedAt)
	}
	// As sops: base64url without padding of the 2048-bit RSA ciphertext.
	if strings.ContainsAny(s.Enc, "=+/") {
		t.Errorf("enc is not unpadded base64url: %q", s.Enc)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(s.Enc); err != nil || len(raw) != 256 {
		t.Errorf("enc decodes to %d bytes: %v", len(raw), err)
	}
	// The version is resolved once.
	if _, err := r.Wrap(ctx, dataKey); err != nil || srv.Gets.Load() != 1 {
		t.Errorf("second wrap: %v, gets %d", err, srv.Gets.Load())
	}
	if !strings.Contains(r.Describe(), v1) {
		t.Errorf("describe %q", r.Describe())
	}

	id := NewIdentity(opts)
	got, err := id.Unwrap(ctx, s)
	if err != nil || string(got) != string(dataKey) {
		t.Fatalf("unwrap: %v", err)
	}
	if got := srv.Last(); got != (azkvtest.Request{Op: "decrypt", Name: "my-key", Version: v1, Alg: "RSA-OAEP-256"}) {
		t.Errorf("decrypt request: %+v", got)
	}

	// A new key version: old stanzas still decrypt with theirs, a
	// versionless recipient picks the new one, a versioned URL keeps its own.
	v2 := srv.CreateKey("my-key")
	if got, err := id.Unwrap(ctx, s); err != nil || string(got) != string(dataKey) || srv.Last().Version != v1 {
		t.Fatalf("unwrap after rotation: %v %+v", err, srv.Last())
	}
	r2, _ := NewRecipient(srv.KeyURL("my-key", ""), opts)
	if s2, err := r2.Wrap(ctx, dataKey); err != nil || s2.Field("version") != v2 {
		t.Fatalf("wrap after rotation: %v %+v", err, s2)
	}
	r1, _ := NewRecipient(srv.KeyURL("my-key", v1), opts)
	gets := srv.Gets.Load()
	if s1, err := r1.Wrap(ctx, dataKey); err != nil || s1.Field("version") != v1 || srv.Gets.Load() != gets {
		t.Fatalf("wrap with a versioned URL: %v %+v", err, s1)
	}

	// RecipientFromStanza re-wraps to the stanza's key.
	rs, err := RecipientFromStanza(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s3, err := rs.Wrap(ctx, dataKey); err != nil || s3.ID() != s.ID() {
		t.Fatalf("recipient from stanza: %v", err)
	}
	if _, err := RecipientFromStanza(&keys.Stanza{Type: keys.TypeVault}, opts); err == nil {
		t.Error("RecipientFromStanza accepted a vault stanza")
	}
}

func TestErrors(t *testing.T) {
	srv := azkvtest.New("tok-errors-secret")
	defer srv.Close()
	v := srv.CreateKey("k")
	opts, _ := testOpts(srv, srv.Token)
	ctx := context.Background()
	dataKey := []byte("0123456789abcdef0123456789abcdef")

	// Unknown key: 404, the key named in the error.
	r, _ := NewRecipient(srv.KeyURL("nope", ""), opts)
	_, err := r.Wrap(ctx, dataKey)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", srv.KeyURL("nope", "")+"/")) || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown key: %v", err)
	}
	r, _ = NewRecipient(srv.KeyURL("nope", "abc"), opts)
	if _, err := r.Wrap(ctx, dataKey); err == nil || !strings.Contains(err.Error(), "KeyNotFound") {
		t.Errorf("unknown versioned key: %v", err)
	}
	st := &keys.Stanza{Type: keys.TypeAzureKV, Enc: "AAAA", Fields: map[string]string{"vault_url": srv.URL, "name": "k", "version": "0000"}}
	if _, err := NewIdentity(opts).Unwrap(ctx, st); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", srv.KeyURL("k", "0000"))) {
		t.Errorf("unknown version: %v", err)
	}

	// Bad ciphertext: 400 from the vault; malformed enc: no request.
	st.Fields["version"] = v
	if _, err := NewIdentity(opts).Unwrap(ctx, st); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad ciphertext: %v", err)
	}
	n := srv.Decrypts.Load()
	st.Enc = "not base64!"
	if _, err := NewIdentity(opts).Unwrap(ctx, st); err == nil || srv.Decrypts.Load() != n {
		t.Errorf("malformed enc: %v", err)
	}
	st.Fields["vault_url"] = ""
	if _, err := NewIdentity(opts).Unwrap(ctx, st); err == nil {
		t.Error("stanza without vault_url accepted")
	}

	// Wrong token: 401 after the challenge; the token never shows.
	bad, _ := testOpts(srv, "bad-token-xyz")
	r, _ = NewRecipient(srv.KeyURL("k", v), bad)
	_, err = r.Wrap(ctx, dataKey)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "bad-token-xyz") || strings.Contains(err.Error(), srv.Token) {
		t.Errorf("bad token: %v", err)
	}

	// Another stanza type.
	if _, err := NewIdentity(opts).Unwrap(ctx, &keys.Stanza{Type: keys.TypeAge, Enc: "x"}); !errors.Is(err, keys.ErrIncorrectIdentity) {
		t.Errorf("age stanza: %v", err)
	}

	for _, u := range []string{"http://v.vault.azure.net/keys/k", "https://v.vault.azure.net/k", "https://v.vault.azure.net/keys/", "not a url", "https://v.vault.azure.net/keys/a/b/c"} {
		if _, err := NewRecipient(u, opts); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	if r, err := NewRecipient(" https://v.vault.azure.net/keys/a/b ", opts); err != nil || r.Describe() != "azure key vault key https://v.vault.azure.net/keys/a/b" {
		t.Errorf("describe: %v", err)
	}

	id := NewIdentity(opts)
	if id.StanzaType() != keys.TypeAzureKV || strings.Contains(id.Describe(), srv.Token) || id.Describe() != "azure key vault credentials (explicit)" {
		t.Errorf("identity: %q %q", id.StanzaType(), id.Describe())
	}
	if d := NewIdentity(Options{}).Describe(); d != "azure key vault credentials (default chain)" {
		t.Errorf("default describe %q", d)
	}
}

// TestConcurrent unwraps from many goroutines with one identity and one
// cached client, and wraps with one recipient resolving its version once.
func TestConcurrent(t *testing.T) {
	srv := azkvtest.New("tok-c")
	defer srv.Close()
	srv.CreateKey("a")
	srv.CreateKey("b")
	opts, _ := testOpts(srv, "tok-c")
	ctx := context.Background()
	ra, _ := NewRecipient(srv.KeyURL("a", ""), opts)
	rb, _ := NewRecipient(srv.KeyURL("b", ""), opts)
	id := NewIdentity(opts)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ra
			if i%2 == 1 {
				r = rb
			}
			dk := []byte(fmt.Sprintf("data-key-%02d-0123456789abcdefghij", i))
			s, err := r.Wrap(ctx, dk)
			if err != nil {
				errs <- err
				return
			}
			got, err := id.Unwrap(ctx, s)
			if err != nil || string(got) != string(dk) {
				errs <- fmt.Errorf("unwrap %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if srv.Gets.Load() != 2 {
		t.Errorf("gets = %d, want one per recipient", srv.Gets.Load())
	}
}

// TestSopsInterop points the real sops CLI at the local Key Vault: sops
// authenticates with its DefaultAzureCredential (the environment service
// principal, against the server's token endpoint as an AD FS authority so
// that no Entra instance discovery is needed), lacre unwraps sops's stanza,
// and sops decrypts a file whose stanza lacre wrapped for the same data key.
//
// sops verifies the challenge resource (its client options are the
// defaults): the request host must end with "." + the resource's host, so
// the server challenges with resource "https://1:<port>", which
// 127.0.0.1:<port> satisfies.
func TestSopsInterop(t *testing.T) {
	sops := keystest.Sops(t)
	srv := azkvtest.New("sops-interop-token")
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	srv.Tenant, srv.AuthorityHost, srv.Resource = "adfs", srv.URL, "https://1:"+u.Port()
	srv.ClientID, srv.ClientSecret = "sops-client-id", "sops-client-secret-value"
	version := srv.CreateKey("sops-key")

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, srv.CertPEM(), 0o600)
	f := filepath.Join(dir, "s.yaml")
	os.WriteFile(f, []byte("password: hunter2\n"), 0o600)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "AZURE_") && !strings.HasPrefix(e, "SSL_CERT_") && !strings.HasPrefix(e, "IDENTITY_") && !strings.HasPrefix(e, "MSI_") {
			env = append(env, e)
		}
	}
	env = append(env, "HOME="+dir, "SOPS_DISABLE_VERSION_CHECK=1", "SSL_CERT_FILE="+ca,
		"AZURE_TENANT_ID=adfs", "AZURE_CLIENT_ID="+srv.ClientID, "AZURE_CLIENT_SECRET="+srv.ClientSecret,
		"AZURE_AUTHORITY_HOST="+srv.URL)
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(sops, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sops %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// No version in the URL: sops resolves it with GetKey, as lacre does.
	out := run("encrypt", "--azure-kv", srv.KeyURL("sops-key", ""), f)
	if srv.TokensIssued.Load() == 0 || srv.Gets.Load() == 0 {
		t.Errorf("tokens issued %d, gets %d", srv.TokensIssued.Load(), srv.Gets.Load())
	}
	var doc struct {
		Sops struct {
			AzureKV []map[string]string `yaml:"azure_kv"`
		} `yaml:"sops"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil || len(doc.Sops.AzureKV) != 1 {
		t.Fatalf("no azure_kv stanza (%v) in:\n%s", err, out)
	}
	st := doc.Sops.AzureKV[0]
	// The metadata sops writes: exactly the fields lacre's stanza has.
	if fmt.Sprint(slices.Sorted(maps.Keys(st))) != "[created_at enc name vault_url version]" {
		t.Errorf("sops's azure_kv fields: %v", slices.Sorted(maps.Keys(st)))
	}
	if st["vault_url"] != srv.URL || st["name"] != "sops-key" || st["version"] != version {
		t.Fatalf("sops's stanza: %v", st)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(st["enc"]); err != nil || len(raw) != 256 {
		t.Errorf("sops's enc is not unpadded base64url of 256 bytes: %v", err)
	}
	if got := srv.Last(); got != (azkvtest.Request{Op: "encrypt", Name: "sops-key", Version: version, Alg: "RSA-OAEP-256"}) {
		t.Errorf("sops's encrypt request: %+v", got)
	}
	ctx := context.Background()
	opts := Options{Credential: &azkvtest.StaticCredential{Token: srv.Token}, ClientOptions: srv.ClientOptions()}
	theirs := &keys.Stanza{Type: keys.TypeAzureKV, CreatedAt: st["created_at"], Enc: st["enc"],
		Fields: map[string]string{"vault_url": st["vault_url"], "name": st["name"], "version": st["version"]}}
	dataKey, err := NewIdentity(opts).Unwrap(ctx, theirs)
	if err != nil || len(dataKey) != 32 {
		t.Fatalf("unwrap sops's stanza: %v", err)
	}
	r, _ := NewRecipient(srv.KeyURL("sops-key", ""), opts)
	ours, err := r.Wrap(ctx, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	if ours.ID() != theirs.ID() {
		t.Errorf("stanza ids differ: %q vs %q", ours.ID(), theirs.ID())
	}
	swapped := bytes.Replace(out, []byte(st["enc"]), []byte(ours.Enc), 1)
	os.WriteFile(f, swapped, 0o600)
	plain := run("decrypt", f)
	if !strings.Contains(string(plain), "password: hunter2") {
		t.Fatalf("sops decrypt with lacre's stanza:\n%s", plain)
	}
	if srv.Last().Op != "decrypt" || srv.Last().Version != version {
		t.Errorf("sops's decrypt request: %+v", srv.Last())
	}
}
