package azkv

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseSecretCredential feeds the decryption Secret's Azure credential
// entry: no panic, errors keep their prefix and never quote a secret.
func FuzzParseSecretCredential(f *testing.F) {
	for _, s := range []string{
		`{"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","clientId":"c","clientSecret":"sec-1"}`,
		"tenantId: t\nclientId: c\nclientSecret: sec-1\nauthorityHost: https://login.example\n",
		"tenantId: t\nclientId: c\nclientCertificate: |\n  -----BEGIN CERTIFICATE-----\n  MIIB\n  -----END CERTIFICATE-----\nclientCertificatePassword: pw-secret\n",
		"clientId: 11111111-2222-3333-4444-555555555555\n",
		`{"appId":"a","displayName":"d","password":"sec-2","tenant":"t"}`,
		"clientCertificateSendChain: maybe\n",
		"a: &x [*x]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cred, err := ParseSecretCredential(data)
		if err == nil {
			if cred == nil {
				t.Fatal("nil credential without an error")
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "invalid azure key vault credential") {
			t.Fatalf("error without its prefix: %v", err)
		}
		var m map[string]any
		if yaml.Unmarshal(data, &m) != nil {
			return
		}
		// Messages name the tenant and client IDs and field names: take
		// those out, then no secret may be left in the message.
		msg := err.Error()
		for _, k := range []string{"tenantId", "clientId", "appId", "tenant"} {
			if id := strings.TrimSpace(asString(m[k])); id != "" {
				msg = strings.ReplaceAll(msg, id, "")
			}
		}
		for k := range m {
			msg = strings.ReplaceAll(msg, k, "")
		}
		for _, k := range []string{"clientSecret", "clientCertificatePassword", "password", "clientCertificate"} {
			v := strings.TrimSpace(asString(m[k]))
			if len(v) >= 12 && strings.Contains(msg, v) {
				t.Fatalf("error quotes the value of %s: %v", k, err)
			}
		}
	})
}

func asString(v any) string { s, _ := v.(string); return s }
