package keyref

import (
	"strings"
	"testing"
)

const (
	fpUpper = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
	arn     = "arn:aws:kms:us-east-1:111122223333:key/abc"
	azure   = "https://v.vault.azure.net"
)

func TestVaultURI(t *testing.T) {
	a, e, k, err := ParseVaultURI("https://vault.example.com:8200/v1/sops/transit/keys/first")
	if err != nil || a != "https://vault.example.com:8200" || e != "sops/transit" || k != "first" {
		t.Fatalf("%s %s %s %v", a, e, k, err)
	}
	for _, bad := range []string{"https://vault/transit/keys/x", "ftp://v/v1/t/keys/x", "https://v/v1/keys/x", "https://v/v1/t/keys/", "https://v/v1/t/keys/x/y"} {
		if _, _, _, err := ParseVaultURI(bad); err == nil || !strings.Contains(err.Error(), "vault transit URI") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestAzureKeyURL(t *testing.T) {
	for _, tc := range []struct{ in, vault, name, version string }{
		{azure + "/keys/k", azure, "k", ""},
		{azure + "/keys/k/", azure, "k", ""},
		{azure + "/keys/k/v1", azure, "k", "v1"},
	} {
		v, n, ver, err := ParseAzureKeyURL(tc.in)
		if err != nil || v != tc.vault || n != tc.name || ver != tc.version {
			t.Errorf("%q: %q %q %q %v", tc.in, v, n, ver, err)
		}
	}
	for _, bad := range []string{"http://v/keys/k", "https://v/secrets/k", "https://v/keys/k/v/x", "https://v/keys//v"} {
		if _, _, _, err := ParseAzureKeyURL(bad); err == nil || !strings.Contains(err.Error(), "azure") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestNew(t *testing.T) {
	if r := New(TypeKMS, arn+"+role"); r.Value != arn || r.Role != "role" {
		t.Errorf("kms: %+v", r)
	}
	if r := New(TypePGP, "FBC7 B9E2"); r.Value != "FBC7B9E2" {
		t.Errorf("pgp: %+v", r)
	}
	if r := New(TypeAge, "age1x+y"); r.Value != "age1x+y" {
		t.Errorf("age: %+v", r)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		typ, in, want string
	}{
		{TypeAge, "notakey", "age recipient"},
		{TypeKMS, "key/abc", "AWS KMS key ARN"},
		{TypeVault, "https://vault/transit/keys/x", "vault transit URI"},
		{TypeAzureKV, "http://v/keys/k", "azure"},
		{TypeAge, "age1abc", ""},
		{TypeAge, "ssh-ed25519 AAAA", ""},
		{TypePGP, "anything", ""},
	} {
		_, err := Parse(tc.typ, tc.in)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %q: %v, want %q", tc.typ, tc.in, err, tc.want)
		}
	}
}

// TestStanzaString pins the form SOPS prints for stored keys (Stanza.ID).
func TestStanzaString(t *testing.T) {
	for _, tc := range []struct {
		typ    string
		fields map[string]string
		ctx    map[string]string
		want   string
	}{
		{TypeAge, map[string]string{"recipient": "age1x"}, nil, "age1x"},
		{TypePGP, map[string]string{"fp": "fbc7"}, nil, "fbc7"},
		{TypeKMS, map[string]string{"arn": arn}, nil, arn},
		{TypeKMS, map[string]string{"arn": arn, "role": "r", "aws_profile": "p"}, map[string]string{"b": "2", "a": "1"}, arn + "+r|a:1,b:2|p"},
		{TypeKMS, map[string]string{"arn": arn, "aws_profile": "p"}, nil, arn + "|p"},
		{TypeGCPKMS, map[string]string{"resource_id": "projects/p/k"}, nil, "projects/p/k"},
		{TypeAzureKV, map[string]string{"vault_url": azure, "name": "k", "version": "v1"}, nil, azure + "/keys/k/v1"},
		{TypeAzureKV, map[string]string{"vault_url": azure, "name": "k"}, nil, azure + "/keys/k/"},
		{TypeVault, map[string]string{"vault_address": "https://h:8200", "engine_path": "sops", "key_name": "k"}, nil, "https://h:8200/v1/sops/keys/k"},
		{TypeHCKMS, map[string]string{"key_id": "id"}, nil, "id"},
		{"future", map[string]string{"b": "2", "a": "1"}, nil, "future:a=1,b=2"},
	} {
		if got := FromFields(tc.typ, tc.fields, tc.ctx).String(); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.typ, tc.fields, got, tc.want)
		}
	}
}

// TestFolding pins what counts as the same key: ID (exact key), the
// unversioned ID (updatekeys' comparison) and Matches (--rm-* patterns).
func TestFolding(t *testing.T) {
	stanza := func(typ string, kv ...string) Ref {
		f := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			f[kv[i]] = kv[i+1]
		}
		return FromFields(typ, f, nil)
	}
	kmsCtx := FromFields(TypeKMS, map[string]string{"arn": arn, "role": "r"}, map[string]string{"env": "prod"})
	for _, tc := range []struct {
		name                     string
		rule, stored             Ref
		sameID, sameUnver, match bool
	}{
		{"age", New(TypeAge, "age1x"), stanza(TypeAge, "recipient", "age1x"), true, true, true},
		{"age other", New(TypeAge, "age1x"), stanza(TypeAge, "recipient", "age1y"), false, false, false},
		{"pgp case", New(TypePGP, strings.ToLower(fpUpper)), stanza(TypePGP, "fp", fpUpper), true, true, true},
		{"pgp spaces", New(TypePGP, "FBC7 B9E2"), stanza(TypePGP, "fp", "fbc7b9e2"), true, true, true},
		{"kms", New(TypeKMS, arn), stanza(TypeKMS, "arn", arn), true, true, true},
		{"kms role in file only", New(TypeKMS, arn), stanza(TypeKMS, "arn", arn, "role", "r"), false, false, true},
		{"kms role differs", New(TypeKMS, arn+"+x"), stanza(TypeKMS, "arn", arn, "role", "r"), false, false, false},
		{"kms context in file only", New(TypeKMS, arn+"+r"), kmsCtx, false, false, true},
		{"kms context", Ref{Type: TypeKMS, Value: arn, Role: "r", Context: map[string]string{"env": "prod"}}, kmsCtx, true, true, true},
		{"kms context differs", Ref{Type: TypeKMS, Value: arn, Role: "r", Context: map[string]string{"env": "dev"}}, kmsCtx, false, false, false},
		{"kms profile", Ref{Type: TypeKMS, Value: arn, AWSProfile: "p"}, stanza(TypeKMS, "arn", arn, "aws_profile", "p"), true, true, true},
		{"kms profile differs", Ref{Type: TypeKMS, Value: arn, AWSProfile: "q"}, stanza(TypeKMS, "arn", arn, "aws_profile", "p"), false, false, false},
		{"gcp", New(TypeGCPKMS, "projects/p/k"), stanza(TypeGCPKMS, "resource_id", "projects/p/k"), true, true, true},
		{"azure no version", New(TypeAzureKV, azure+"/keys/k"), stanza(TypeAzureKV, "vault_url", azure, "name", "k", "version", "v1"), false, true, true},
		{"azure trailing slash", New(TypeAzureKV, azure+"/keys/k/"), stanza(TypeAzureKV, "vault_url", azure, "name", "k", "version", "v1"), false, true, true},
		{"azure same version", New(TypeAzureKV, azure+"/keys/k/v1"), stanza(TypeAzureKV, "vault_url", azure, "name", "k", "version", "v1"), true, true, true},
		{"azure other version", New(TypeAzureKV, azure+"/keys/k/v2"), stanza(TypeAzureKV, "vault_url", azure, "name", "k", "version", "v1"), false, true, false},
		{"azure other key", New(TypeAzureKV, azure+"/keys/j"), stanza(TypeAzureKV, "vault_url", azure, "name", "k", "version", "v1"), false, false, false},
		{"vault", New(TypeVault, "https://h:8200/v1/sops/keys/k"), stanza(TypeVault, "vault_address", "https://h:8200", "engine_path", "sops", "key_name", "k"), true, true, true},
		{"vault other", New(TypeVault, "https://h:8200/v1/sops/keys/j"), stanza(TypeVault, "vault_address", "https://h:8200", "engine_path", "sops", "key_name", "k"), false, false, false},
		{"hckms", New(TypeHCKMS, "id"), stanza(TypeHCKMS, "key_id", "id"), true, true, true},
		{"types differ", New(TypeAge, "x"), stanza(TypeHCKMS, "key_id", "x"), true, true, false},
	} {
		if got := tc.rule.ID() == tc.stored.ID(); got != tc.sameID {
			t.Errorf("%s: ID %q vs %q: same=%v", tc.name, tc.rule.ID(), tc.stored.ID(), got)
		}
		if got := tc.rule.Unversioned().ID() == tc.stored.Unversioned().ID(); got != tc.sameUnver {
			t.Errorf("%s: unversioned %q vs %q: same=%v", tc.name, tc.rule.Unversioned().ID(), tc.stored.Unversioned().ID(), got)
		}
		if got := tc.rule.Matches(tc.stored); got != tc.match {
			t.Errorf("%s: Matches = %v", tc.name, got)
		}
	}
}

func TestIDForms(t *testing.T) {
	for _, tc := range []struct {
		r   Ref
		id  string
		unv string
	}{
		{New(TypePGP, "ab cd"), "ABCD", "ABCD"},
		{New(TypeAzureKV, azure+"/keys/k/v1"), azure + "/keys/k/v1", azure + "/keys/k"},
		{FromFields(TypeAzureKV, map[string]string{"vault_url": azure, "name": "k"}, nil), azure + "/keys/k", azure + "/keys/k"},
		{New(TypeAzureKV, "not a url/keys/k/v1"), "not a url/keys/k/v1", "not a url/keys/k"},
		{New(TypeVault, "HTTPS://h/v1/t/keys/k"), "https://h/v1/t/keys/k", "https://h/v1/t/keys/k"},
		{New(TypeKMS, arn+"+r"), arn + "+r", arn + "+r"},
	} {
		if got := tc.r.ID(); got != tc.id {
			t.Errorf("%+v: ID %q, want %q", tc.r, got, tc.id)
		}
		if got := tc.r.Unversioned().ID(); got != tc.unv {
			t.Errorf("%+v: unversioned %q, want %q", tc.r, got, tc.unv)
		}
	}
}
