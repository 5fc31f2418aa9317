package awskms

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseSecretCredentials feeds the decryption Secret's AWS credentials
// entry: no panic, and an error never quotes the secret access key.
func FuzzParseSecretCredentials(f *testing.F) {
	f.Add([]byte("aws_access_key_id: AKIAXX\naws_secret_access_key: very-secret-value\n"))
	f.Add([]byte(`{"AWS_ACCESS_KEY_ID": "AKIAXX", "AWS_SECRET_ACCESS_KEY": "very-secret-value", "AWS_SESSION_TOKEN": "tok"}`))
	f.Add([]byte(`{"aws_secret_access_key": "very-secret-value"}`))
	f.Add([]byte("- very-secret-value"))
	f.Add([]byte("a: &x [*x]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := ParseSecretCredentials(data)
		if err == nil {
			if cp == nil {
				t.Fatal("nil provider without an error")
			}
			return
		}
		var raw map[string]any
		if yaml.Unmarshal(data, &raw) != nil {
			return
		}
		for _, k := range []string{"aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "aws_session_token", "AWS_SESSION_TOKEN"} {
			v, _ := raw[k].(string)
			v = strings.TrimSpace(v)
			if len(v) < 8 || strings.Contains(v, "aws") || strings.Contains(v, "AWS") {
				continue // too short to tell apart from the message text
			}
			if _, isKey := raw[v]; isKey {
				continue
			}
			if strings.Contains(err.Error(), v) {
				t.Fatalf("error quotes the value of %s: %v", k, err)
			}
		}
	})
}
