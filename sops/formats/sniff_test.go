package formats

import "testing"

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		f          Format
		enc        bool
	}{
		{"s.yaml", "a: ENC[AES256_GCM,data:x]\nsops:\n    mac: ENC[AES256_GCM,data:y]\n", YAML, true},
		{"s.yml", "a: b\n", YAML, false},
		{"s.yaml", "mac: ENC[x]\n", YAML, false},
		{"s.json", "{\n\t\"sops\": {\n\t\t\"mac\": \"ENC[AES256_GCM,data:y]\"\n\t}\n}", JSON, true},
		{"s.json", `{"sops":{"mac":"ENC[AES256_GCM,data:y]"}}`, JSON, true},
		{"s.json", `{"mac": "plain", "x": "ENC["}`, JSON, false},
		{"s.env", "A=ENC[x]\nsops_mac=ENC[y]\n", Dotenv, true},
		{"s.env", "A=b\n", Dotenv, false},
		{"s.ini", "[sops]\nmac = ENC[y]\n", INI, true},
		{"s.ini", "[a]\nb = c\n", INI, false},
		{"cert.bin", "{\n\t\"data\": \"ENC[x]\",\n\t\"sops\": {\"mac\": \"ENC[y]\"}\n}", Binary, true},
		{"cert.bin", "not json \"mac\": \"ENC[y]\"", Binary, false},
		{"README", "plain", Binary, false},
	} {
		f, enc := Sniff(tc.name, []byte(tc.data))
		if f != tc.f || enc != tc.enc {
			t.Errorf("%s %q: %v %v, want %v %v", tc.name, tc.data, f, enc, tc.f, tc.enc)
		}
	}
}
