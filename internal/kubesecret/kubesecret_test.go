package kubesecret

import (
	"strings"
	"testing"
)

func TestPlain(t *testing.T) {
	const secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: b\n"
	for _, tc := range []struct {
		name, data string
		want       bool
	}{
		{"s.yaml", secret, true},
		{"s.yaml", "kind: ConfigMap\n---\n" + secret, true},
		{"s.json", `{"apiVersion": "v1", "kind": "Secret"}`, true},
		{"s.yaml", "apiVersion: apps/v1\nkind: Secret\n", false},
		{"s.yaml", "kind: ConfigMap\n", false},
		{"s.env", "kind=Secret\n", false},
		{"s.yaml", secret + "sops:\n    version: 3.13.3\n", true}, // stringData in clear (issue 17 item 4)
		{"s.yaml", "apiVersion: v1\nkind: Secret\nstringData:\n    a: ENC[AES256_GCM,data:x]\nsops:\n    mac: ENC[AES256_GCM,data:y]\n", false},
		{"s.yaml", "a: [\n", false},
	} {
		if got := Plain(tc.name, []byte(tc.data)); got != tc.want {
			t.Errorf("%s %q: %v, want %v", tc.name, tc.data, got, tc.want)
		}
	}
}

// TestPlainBypasses: the forms that got past the rule (issue 17 item 4)
// as check secrets sees them, one file at a time.
func TestPlainBypasses(t *testing.T) {
	const secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: CANARY-kubesecret\n"
	for _, tc := range []struct{ what, name, data string }{
		{"other extension", "s.txt", secret},
		{"no extension", "secret", secret},
		{"kind: List", "l.yaml", "apiVersion: v1\nkind: List\nitems:\n  - " + strings.ReplaceAll(secret, "\n", "\n    ") + "\n"},
		{"sops-looking comments", "s.yaml", "# sops:\n#     mac: ENC[AES256_GCM,data:x]\n" + secret},
		{"stringData in clear", "s.yaml", "apiVersion: v1\nkind: Secret\ndata:\n    a: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\nstringData:\n    b: CANARY-kubesecret\nsops:\n    mac: ENC[AES256_GCM,data:y]\n    encrypted_regex: ^data$\n"},
		{"after a list document", "s.yaml", "- a\n---\n" + secret},
	} {
		if !Plain(tc.name, []byte(tc.data)) {
			t.Errorf("%s: not reported", tc.what)
		}
	}
}
