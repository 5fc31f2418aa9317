package gcpkms

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/gcpkms/gcpkmstest"
	"github.com/lacre/lacre/keys/keystest"
)

const keyID = "projects/p1/locations/global/keyRings/ring/cryptoKeys/sops"

// trust returns client options that trust a TLS test server.
func trust(srv *gcpkmstest.Server) []option.ClientOption {
	return []option.ClientOption{option.WithGRPCDialOption(grpc.WithTransportCredentials(
		credentials.NewTLS(&tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS12})))}
}

func TestConformance(t *testing.T) {
	t.Run("insecure", func(t *testing.T) {
		srv := gcpkmstest.New()
		defer srv.Close()
		srv.CreateKey(keyID)
		other := gcpkmstest.New() // does not hold the key
		defer other.Close()
		opts := Options{Endpoint: srv.Addr, Insecure: true}
		r, err := NewRecipient(keyID, opts)
		if err != nil {
			t.Fatal(err)
		}
		keystest.Run(t, keystest.Backend{
			Type: keys.TypeGCPKMS, Recipient: r, Identity: NewIdentity(opts),
			WrongIdentity: NewIdentity(Options{Endpoint: other.Addr, Insecure: true}),
		})
		defer func() { _ = Close() }()
	})
	t.Run("tls-token", func(t *testing.T) {
		const token, wrong = "ya29.conformance-token-secret", "ya29.wrong-token-secret"
		srv := gcpkmstest.NewTLS()
		defer srv.Close()
		srv.CreateKey(keyID)
		srv.RequireToken(token)
		copts := trust(srv)
		opts := Options{Endpoint: srv.Addr, AccessToken: token, ClientOptions: copts}
		r, err := NewRecipient(keyID, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		keystest.Run(t, keystest.Backend{
			Type: keys.TypeGCPKMS, Recipient: r, Identity: NewIdentity(opts),
			WrongIdentity: NewIdentity(Options{Endpoint: srv.Addr, AccessToken: wrong, ClientOptions: copts}),
			Secrets:       []string{token, wrong},
		})
	})
}

// TestServerSawRequest checks what the SDK sent: the key name, and that
// the ciphertext is bound to it.
func TestServerSawRequest(t *testing.T) {
	srv := gcpkmstest.New()
	defer srv.Close()
	srv.CreateKey(keyID)
	const otherID = "projects/p1/locations/global/keyRings/ring/cryptoKeys/other"
	srv.CreateKey(otherID)
	ctx := context.Background()
	opts := Options{Endpoint: srv.Addr, Insecure: true}
	r, err := NewRecipient(" "+keyID, opts) // spaces are removed, as sops does
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dk := bytes.Repeat([]byte{7}, 32)
	s, err := r.Wrap(ctx, dk)
	if err != nil {
		t.Fatal(err)
	}
	if srv.LastName() != keyID || s.Field("resource_id") != keyID || s.ID() != keyID {
		t.Fatalf("server saw %q, stanza %+v", srv.LastName(), s)
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(s.Enc); err != nil {
		t.Fatalf("enc is not standard base64: %q", s.Enc)
	}
	if s.CreatedAt == "" || s.Context != nil {
		t.Fatalf("stanza: %+v", s)
	}
	got, err := NewIdentity(opts).Unwrap(ctx, s)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	if c := srv.Calls(); len(c) != 2 || c[0] != "Encrypt "+keyID || c[1] != "Decrypt "+keyID {
		t.Fatalf("calls: %q", c)
	}

	// Another key name must not decrypt it.
	moved := s.Clone()
	moved.Fields["resource_id"] = otherID
	_, err = NewIdentity(opts).Unwrap(ctx, moved)
	if err == nil || !strings.Contains(err.Error(), `"`+otherID+`"`) || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("other key: %v", err)
	}
	if srv.LastName() != otherID {
		t.Fatalf("server saw %q", srv.LastName())
	}

	// An unknown key is NotFound, named in the error.
	const unknown = "projects/p1/locations/global/keyRings/ring/cryptoKeys/nope"
	r2, _ := NewRecipient(unknown, opts)
	_, err = r2.Wrap(ctx, dk)
	if err == nil || !strings.Contains(err.Error(), `"`+unknown+`"`) || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("unknown key: %v", err)
	}

	// Both recipients and the identity share one client.
	if r.c != r2.c || NewIdentity(opts).c != r.c {
		t.Fatal("options with the same values did not share a client")
	}
	if err := Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wrap(ctx, dk); err != nil { // dials again
		t.Fatalf("wrap after Close: %v", err)
	}
}

func TestAccessTokenHeader(t *testing.T) {
	const token = "ya29.static-access-token-value"
	srv := gcpkmstest.NewTLS()
	defer srv.Close()
	srv.CreateKey(keyID)
	srv.RequireToken(token)
	ctx := context.Background()
	copts := trust(srv)
	r, _ := NewRecipient(keyID, Options{Endpoint: srv.Addr, AccessToken: token, ClientOptions: copts})
	defer r.Close()
	s, err := r.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.LastAuthorization(); got != "Bearer "+token {
		t.Fatalf("authorization = %q", got)
	}
	id := NewIdentity(Options{Endpoint: srv.Addr, AccessToken: "ya29.bad-token-value", ClientOptions: copts})
	defer id.Close()
	_, err = id.Unwrap(ctx, s)
	if err == nil || !strings.Contains(err.Error(), "Unauthenticated") || strings.Contains(err.Error(), "ya29.") ||
		!strings.Contains(err.Error(), keyID) {
		t.Fatalf("bad token: %v", err)
	}
	if d := id.Describe(); strings.Contains(d, "ya29") || !strings.Contains(d, "access token") {
		t.Fatalf("describe: %q", d)
	}
}

// TestCredentialsJSON uses a service account key: the client signs a JWT
// with it (no token exchange), which the server receives as the bearer.
func TestCredentialsJSON(t *testing.T) {
	srv := gcpkmstest.NewTLS()
	defer srv.Close()
	srv.CreateKey(keyID)
	pk, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(pk)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "p1", "private_key_id": "abc123",
		"private_key": keyPEM, "client_email": "lacre@p1.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": "https://127.0.0.1:1/token",
	})
	ctx := context.Background()
	r, _ := NewRecipient(keyID, Options{Endpoint: srv.Addr, CredentialsJSON: sa, ClientOptions: trust(srv)})
	defer r.Close()
	if _, err := r.Wrap(ctx, bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	auth := srv.LastAuthorization()
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if !strings.HasPrefix(auth, "Bearer ") || len(parts) != 3 {
		t.Fatalf("authorization = %q", auth)
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if !strings.Contains(string(claims), "lacre@p1.iam.gserviceaccount.com") {
		t.Fatalf("jwt claims: %s", claims)
	}

	for _, bad := range [][]byte{
		[]byte(`{"type":"external_account","credential_source":{"executable":{"command":"/bin/true"}}}`),
		[]byte(`not json PRIVATE-SECRET`),
	} {
		r, _ := NewRecipient(keyID, Options{Endpoint: srv.Addr, CredentialsJSON: bad})
		_, err := r.Wrap(ctx, bytes.Repeat([]byte{1}, 32))
		if err == nil || strings.Contains(err.Error(), "PRIVATE-SECRET") || strings.Contains(err.Error(), "/bin/true") ||
			!strings.Contains(err.Error(), `"`+keyID+`"`) {
			t.Fatalf("credentials %s: %v", bad, err)
		}
	}
}

func TestOptionsAndStanzas(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{
		{Endpoint: "127.0.0.1:1", Insecure: true, AccessToken: "ya29.never-sent"},
		{Endpoint: "127.0.0.1:1", Insecure: true, CredentialsJSON: []byte(`{"type":"service_account"}`)},
		{Insecure: true},
	} {
		r, _ := NewRecipient(keyID, o)
		_, err := r.Wrap(ctx, make([]byte, 32))
		if err == nil || strings.Contains(err.Error(), "ya29") || !strings.Contains(err.Error(), `"`+keyID+`"`) {
			t.Errorf("%+v: %v", o.describe(), err)
		}
	}
	for _, bad := range []string{"", "projects/p/locations/l/keyRings/r", "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", "arn:aws:kms:x"} {
		if _, err := NewRecipient(bad, Options{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := RecipientFromStanza(&keys.Stanza{Type: keys.TypeVault}, Options{}); err == nil {
		t.Error("vault stanza accepted")
	}
	r, err := RecipientFromStanza(&keys.Stanza{Type: keys.TypeGCPKMS, Fields: map[string]string{"resource_id": keyID}}, Options{})
	if err != nil || keys.Describe(r) != "gcp kms key "+keyID {
		t.Fatalf("from stanza: %v %v", r, err)
	}
	id := NewIdentity(Options{})
	if id.StanzaType() != keys.TypeGCPKMS || id.Describe() != "gcp kms default credentials" {
		t.Fatalf("identity: %q %q", id.StanzaType(), id.Describe())
	}
	if _, err := id.Unwrap(ctx, &keys.Stanza{Type: keys.TypeKMS, Enc: "x"}); !errors.Is(err, keys.ErrIncorrectIdentity) {
		t.Fatalf("kms stanza: %v", err)
	}
	// Malformed stanzas fail before any client is created.
	if _, err := id.Unwrap(ctx, &keys.Stanza{Type: keys.TypeGCPKMS, Fields: map[string]string{"resource_id": keyID}, Enc: "!!"}); err == nil || !strings.Contains(err.Error(), keyID) {
		t.Fatalf("bad enc: %v", err)
	}
	if _, err := id.Unwrap(ctx, &keys.Stanza{Type: keys.TypeGCPKMS, Fields: map[string]string{"resource_id": "x"}, Enc: "AAAA"}); err == nil {
		t.Fatal("bad resource id accepted")
	}
}

func sopsPath(t *testing.T) string {
	sops := keystest.Sops(t)
	return sops
}

// TestSopsInterop points the real sops CLI (3.13.x, gRPC client) at the
// local server through SOPS_GCP_KMS_ENDPOINT with a static access token
// (GOOGLE_OAUTH_ACCESS_TOKEN). gRPC only sends tokens over TLS, so the
// server uses a self-signed certificate that sops trusts via SSL_CERT_FILE.
// lacre unwraps sops's stanza, and sops decrypts a file whose stanza lacre
// wrapped for the same data key.
func TestSopsInterop(t *testing.T) {
	sops := sopsPath(t)
	const token = "ya29.sops-interop-token"
	srv := gcpkmstest.NewTLS()
	defer srv.Close()
	srv.CreateKey(keyID)
	srv.RequireToken(token)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, srv.CACertPEM, 0o600)
	f := filepath.Join(dir, "s.yaml")
	os.WriteFile(f, []byte("password: hunter2\n"), 0o600)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GOOGLE_") && !strings.HasPrefix(e, "SOPS_") && !strings.HasPrefix(e, "SSL_CERT_") {
			env = append(env, e)
		}
	}
	env = append(env, "SOPS_DISABLE_VERSION_CHECK=1", "HOME="+dir, "SOPS_GCP_KMS_ENDPOINT="+srv.Addr,
		"GOOGLE_OAUTH_ACCESS_TOKEN="+token, "SSL_CERT_FILE="+ca)
	cmd := exec.Command(sops, "encrypt", "--gcp-kms", keyID, f)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sops encrypt: %v\n%s", err, out)
	}
	if srv.LastName() != keyID || srv.LastAuthorization() != "Bearer "+token || srv.Encrypts.Load() != 1 {
		t.Fatalf("server saw %q %q (%d encrypts)", srv.LastName(), srv.LastAuthorization(), srv.Encrypts.Load())
	}
	m := regexp.MustCompile(`(?m)^\s+enc: (\S+)$`).FindSubmatch(out)
	if !bytes.Contains(out, []byte("gcp_kms:")) || !bytes.Contains(out, []byte("resource_id: "+keyID+"\n")) || m == nil {
		t.Fatalf("no gcp_kms stanza in:\n%s", out)
	}
	enc := string(m[1])
	ctx := context.Background()
	opts := Options{Endpoint: srv.Addr, AccessToken: token, ClientOptions: trust(srv)}
	theirs := &keys.Stanza{Type: keys.TypeGCPKMS, Enc: enc, Fields: map[string]string{"resource_id": keyID}}
	dataKey, err := NewIdentity(opts).Unwrap(ctx, theirs)
	if err != nil || len(dataKey) != 32 {
		t.Fatalf("unwrap sops's stanza: %v", err)
	}
	r, _ := NewRecipient(keyID, opts)
	defer r.Close()
	ours, err := r.Wrap(ctx, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	swapped := bytes.Replace(out, []byte(enc), []byte(ours.Enc), 1)
	if bytes.Equal(swapped, out) {
		t.Fatal("enc not replaced")
	}
	os.WriteFile(f, swapped, 0o600)
	before := srv.Decrypts.Load()
	cmd = exec.Command(sops, "decrypt", f)
	cmd.Env = env
	plain, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(plain), "password: hunter2") {
		t.Fatalf("sops decrypt with lacre's stanza: %v\n%s", err, plain)
	}
	if srv.Decrypts.Load() != before+1 || srv.LastName() != keyID {
		t.Fatalf("sops decrypt calls: %d, last name %q", srv.Decrypts.Load()-before, srv.LastName())
	}
}
