package rules

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
)

const (
	age1 = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	age2 = "age1vet6d2x435cqjxyau54cuyajxuathkm3mz9m2zyk2evr7l3ha4wqgq5agh"
	fp   = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
)

func TestParseGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/full.sops.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.CreationRules) != 4 {
		t.Fatalf("got %d rules", len(cfg.CreationRules))
	}
	guide := cfg.CreationRules[0]
	if guide.EncryptedRegex != "^(data|stringData)$" || len(guide.KeyGroups) != 1 || !reflect.DeepEqual(guide.KeyGroups[0][0], Key{Type: keys.TypePGP, Value: fp}) {
		t.Errorf("seed guide rule: %+v", guide)
	}
	flat := cfg.CreationRules[1].KeyGroups[0]
	wantTypes := []string{keys.TypeKMS, keys.TypeKMS, keys.TypeGCPKMS, keys.TypeAzureKV, keys.TypeVault, keys.TypePGP, keys.TypeAge, keys.TypeAge}
	var gotTypes []string
	for _, k := range flat {
		gotTypes = append(gotTypes, k.Type)
	}
	if !reflect.DeepEqual(gotTypes, wantTypes) {
		t.Errorf("flat rule types = %v", gotTypes)
	}
	if flat[1].Role != "arn:aws:iam::111122223333:role/sops" || flat[0].AWSProfile != "prod" {
		t.Errorf("kms keys: %+v %+v", flat[0], flat[1])
	}
	groups := cfg.CreationRules[2]
	if len(groups.KeyGroups) != 3 || groups.ShamirThreshold != 2 {
		t.Fatalf("key_groups rule: %+v", groups)
	}
	// The merge of an anchored group and dedupe of the repeated age key.
	if n := len(groups.KeyGroups[2]); n != 4 {
		t.Errorf("merged group has %d keys: %+v", n, groups.KeyGroups[2])
	}
	if groups.KeyGroups[0][0].Context["Env"] != "prod" {
		t.Errorf("kms context: %+v", groups.KeyGroups[0][0])
	}
	if cfg.Stores.YAMLIndent == nil || *cfg.Stores.YAMLIndent != 2 || cfg.Stores.JSONIndent == nil || *cfg.Stores.JSONIndent != 0 {
		t.Errorf("stores: %+v", cfg.Stores)
	}
}

func TestRuleMatching(t *testing.T) {
	cfg, err := Parse([]byte("creation_rules:\n  - path_regex: ^prod/.*\\.yaml$\n    age: " + age1 + "\n  - age: " + age2 + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := cfg.Rule(filepath.Join(dir, "prod", "s.yaml"), dir)
	if err != nil || r.KeyGroups[0][0].Value != age1 {
		t.Fatalf("prod: %+v %v", r, err)
	}
	r, err = cfg.Rule(filepath.Join(dir, "dev", "s.yaml"), dir)
	if err != nil || r.KeyGroups[0][0].Value != age2 {
		t.Fatalf("fallback: %+v %v", r, err)
	}
	cfg2, _ := Parse([]byte("creation_rules:\n  - path_regex: nomatch\n    age: " + age1 + "\n"))
	if _, err := cfg2.Rule("x.yaml", dir); !errors.Is(err, ErrNoMatchingRule) {
		t.Fatalf("no match: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"two rules", "creation_rules:\n  - encrypted_regex: a\n    unencrypted_regex: b\n    age: " + age1, "more than one"},
		{"bad regex", "creation_rules:\n  - path_regex: '('\n", "path_regex"},
		{"bad vault", "creation_rules:\n  - hc_vault_transit_uri: https://vault/transit/keys/x\n", "vault transit URI"},
		{"bad azure", "creation_rules:\n  - azure_keyvault: http://v/keys/k\n", "azure"},
		{"bad age", "creation_rules:\n  - age: notakey\n", "age recipient"},
		{"bad yaml", "creation_rules: [\n", "invalid YAML"},
		{"threshold", "creation_rules:\n  - shamir_threshold: 3\n    key_groups:\n      - age: [" + age1 + "]\n      - age: [" + age2 + "]\n", "larger than"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	os.MkdirAll(deep, 0o755)
	if _, err := Find(deep); !errors.Is(err, ErrNotFound) {
		t.Fatalf("none: %v", err)
	}
	os.WriteFile(filepath.Join(root, "a", ".sops.yml"), []byte("x"), 0o644)
	_, err := Find(deep)
	var yml *IgnoredYMLError
	if !errors.As(err, &yml) || !errors.Is(err, ErrNotFound) {
		t.Fatalf(".sops.yml: %v", err)
	}
	os.WriteFile(filepath.Join(root, ".sops.yaml"), []byte("x"), 0o644)
	p, err := Find(deep)
	if err != nil || p != filepath.Join(root, ".sops.yaml") {
		t.Fatalf("found %q %v", p, err)
	}
}

func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/full.sops.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("creation_rules:\n  - age: " + age1 + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = Parse(b) })
}
