package kubesecret

import "testing"

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
		{"s.yaml", secret + "sops:\n    version: 3.13.3\n", false},
		{"s.yaml", "apiVersion: v1\nkind: Secret\nstringData:\n    a: ENC[AES256_GCM,data:x]\nsops:\n    mac: ENC[AES256_GCM,data:y]\n", false},
		{"s.yaml", "a: [\n", false},
	} {
		if got := Plain(tc.name, []byte(tc.data)); got != tc.want {
			t.Errorf("%s %q: %v, want %v", tc.name, tc.data, got, tc.want)
		}
	}
}
