package azkv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/lacre/lacre/keys/azkv/azkvtest"
)

// TestSecretCredentialAgainstServer uses a Flux-style service principal
// Secret as the explicit credential: the token comes from the local Entra
// token endpoint, and Key Vault accepts it.
func TestSecretCredentialAgainstServer(t *testing.T) {
	srv := azkvtest.New("issued-token-123")
	defer srv.Close()
	srv.ClientID, srv.ClientSecret = "11111111-2222-3333-4444-555555555555", "s3cr3t-Value~xyz"
	srv.CreateKey("flux")
	copts := azcore.ClientOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}}
	ctx := context.Background()
	for _, format := range []string{
		`{"tenantId": "` + srv.Tenant + `", "clientId": "` + srv.ClientID + `", "clientSecret": "` + srv.ClientSecret + `", "authorityHost": "` + srv.URL + `"}`,
		"tenantId: " + srv.Tenant + "\nclientId: " + srv.ClientID + "\nclientSecret: " + srv.ClientSecret + "\nauthorityHost: " + srv.URL + "\n",
		"appId: " + srv.ClientID + "\ntenant: " + srv.Tenant + "\npassword: " + srv.ClientSecret + "\nauthorityHost: " + srv.URL + "\ndisplayName: x\n",
	} {
		cred, err := parseSecretCredential([]byte(format), copts, true)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Credential: cred, ClientOptions: srv.ClientOptions()}
		r, _ := NewRecipient(srv.KeyURL("flux", ""), opts)
		before := srv.TokensIssued.Load()
		s, err := r.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatalf("wrap: %v", err)
		}
		if _, err := NewIdentity(opts).Unwrap(ctx, s); err != nil {
			t.Fatalf("unwrap: %v", err)
		}
		if srv.TokensIssued.Load() == before {
			t.Error("no token was issued by the local token endpoint")
		}
	}

	// A wrong client secret: authentication fails, the secret never shows.
	cred, err := parseSecretCredential([]byte("tenantId: "+srv.Tenant+"\nclientId: "+srv.ClientID+"\nclientSecret: wrong-secret-456\nauthorityHost: "+srv.URL), copts, true)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewRecipient(srv.KeyURL("flux", ""), Options{Credential: cred, ClientOptions: srv.ClientOptions()})
	_, err = r.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"))
	if err == nil || strings.Contains(err.Error(), "wrong-secret-456") || strings.Contains(err.Error(), srv.ClientSecret) ||
		!strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), srv.KeyURL("flux", "")) {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestParseSecretCredential(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	indent := func(s string) string { return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ") }
	good := map[string]string{
		"secret json":      `{"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","clientId":"c","clientSecret":"sec-1"}`,
		"secret yaml":      "tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47\nclientId: c\nclientSecret: sec-1\n",
		"certificate":      "tenantId: t\nclientId: c\nclientCertificateSendChain: true\nclientCertificate: |\n" + indent(certPEM+keyPEM) + "\n",
		"managed identity": "clientId: 11111111-2222-3333-4444-555555555555\n",
		"mi with tenant":   "tenantId: t\nclientId: 11111111-2222-3333-4444-555555555555\n",
		"az cli output":    `{"appId":"a","displayName":"d","password":"sec-2","tenant":"t"}`,
	}
	for name, data := range good {
		cred, err := ParseSecretCredential([]byte(data))
		if err != nil || cred == nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if cred, _ := ParseSecretCredential([]byte(good["managed identity"])); cred != nil {
		if _, ok := cred.(*azidentity.ManagedIdentityCredential); !ok {
			t.Errorf("clientId alone gives %T", cred)
		}
	}
	bad := map[string]string{
		"not yaml":         "clientSecret: [sec-3\n  : {",
		"not a mapping":    "- sec-4\n",
		"empty":            "",
		"tenant only":      "tenantId: t\n",
		"secret no tenant": "clientId: c\nclientSecret: sec-5\n",
		"bad certificate":  "tenantId: t\nclientId: c\nclientCertificate: sec-6-not-a-cert\nclientCertificatePassword: sec-7\n",
		"number":           "tenantId: t\nclientId: c\nclientSecret: 12345678901\n",
		"send chain":       "tenantId: t\nclientId: c\nclientSecret: x\nclientCertificateSendChain: sec-8\n",
		"http authority":   "tenantId: t\nclientId: c\nclientSecret: sec-9\nauthorityHost: http://login.example\n",
	}
	for name, data := range bad {
		_, err := ParseSecretCredential([]byte(data))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, sec := range []string{"sec-", "12345678901"} {
			if strings.Contains(err.Error(), sec) {
				t.Errorf("%s: error echoes a value: %v", name, err)
			}
		}
		if !strings.HasPrefix(err.Error(), "invalid azure key vault credential") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048) // Entra accepts RSA certificates only
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lacre-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
}
