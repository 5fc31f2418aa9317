package keysource

import (
	"fmt"
	"strings"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keyref"
	"github.com/lacre/lacre/rules"
)

// Flags are the master key flags of encrypt, rotate and groups add.
type Flags struct {
	Age, PGP, KMS, GCPKMS, AzureKV, Vault []string
	AWSProfile                            string
	EncryptionContext                     string
}

// Register adds the flags to cmd, named prefix+"age", ... and described as
// verb+" age recipients".
func (kf *Flags) Register(cmd interface {
	StringSliceVarP(p *[]string, name, shorthand string, value []string, usage string)
	StringVar(p *string, name, value, usage string)
}, prefix, verb string) {
	short := func(s string) string {
		if prefix == "" {
			return s
		}
		return ""
	}
	cmd.StringSliceVarP(&kf.Age, prefix+"age", short("a"), nil, verb+" age recipients, comma separated (env SOPS_AGE_RECIPIENTS)")
	cmd.StringSliceVarP(&kf.PGP, prefix+"pgp", short("p"), nil, verb+" PGP fingerprints, comma separated (env SOPS_PGP_FP)")
	cmd.StringSliceVarP(&kf.KMS, prefix+"kms", short("k"), nil, verb+" AWS KMS key ARNs, comma separated, arn+role to assume a role (env SOPS_KMS_ARN)")
	cmd.StringSliceVarP(&kf.GCPKMS, prefix+"gcp-kms", "", nil, verb+" GCP KMS resource IDs, comma separated (env SOPS_GCP_KMS_IDS)")
	cmd.StringSliceVarP(&kf.AzureKV, prefix+"azure-kv", "", nil, verb+" Azure Key Vault key URLs, comma separated (env SOPS_AZURE_KEYVAULT_URLS)")
	cmd.StringSliceVarP(&kf.Vault, prefix+"hc-vault-transit", "", nil, verb+" Vault transit key URIs, comma separated (env SOPS_VAULT_URIS)")
}

// FromEnv fills empty flags from sops's environment variables.
func (kf *Flags) FromEnv(env func(string) string) {
	fill := func(dst *[]string, name string) {
		if len(*dst) == 0 {
			if v := env(name); v != "" {
				*dst = SplitList(v)
			}
		}
	}
	fill(&kf.Age, "SOPS_AGE_RECIPIENTS")
	fill(&kf.PGP, "SOPS_PGP_FP")
	fill(&kf.KMS, "SOPS_KMS_ARN")
	fill(&kf.GCPKMS, "SOPS_GCP_KMS_IDS")
	fill(&kf.AzureKV, "SOPS_AZURE_KEYVAULT_URLS")
	fill(&kf.Vault, "SOPS_VAULT_URIS")
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Empty reports whether no key was given.
func (kf *Flags) Empty() bool {
	return len(kf.Age)+len(kf.PGP)+len(kf.KMS)+len(kf.GCPKMS)+len(kf.AzureKV)+len(kf.Vault) == 0
}

// ContextError is an invalid --encryption-context item.
type ContextError struct{ Item string }

func (e *ContextError) Error() string {
	return fmt.Sprintf("invalid encryption context %q: use key:value,key2:value2", e.Item)
}

// parseContext parses --encryption-context k:v,k2:v2.
func parseContext(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range SplitList(s) {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return nil, &ContextError{Item: kv}
		}
		out[k] = v
	}
	return out, nil
}

// RuleKeys turns the flags into rule keys (one group).
func (kf *Flags) RuleKeys() ([]rules.Key, error) {
	ctx, err := parseContext(kf.EncryptionContext)
	if err != nil {
		return nil, err
	}
	var out []rules.Key
	for _, v := range kf.KMS {
		k := keyref.New(keys.TypeKMS, v)
		k.AWSProfile, k.Context = kf.AWSProfile, ctx
		out = append(out, k)
	}
	for _, v := range kf.GCPKMS {
		out = append(out, rules.Key{Type: keys.TypeGCPKMS, Value: v})
	}
	for _, v := range kf.AzureKV {
		out = append(out, rules.Key{Type: keys.TypeAzureKV, Value: v})
	}
	for _, v := range kf.Vault {
		out = append(out, rules.Key{Type: keys.TypeVault, Value: v})
	}
	for _, v := range kf.PGP {
		out = append(out, keyref.New(keys.TypePGP, v))
	}
	for _, v := range kf.Age {
		out = append(out, rules.Key{Type: keys.TypeAge, Value: v})
	}
	return out, nil
}
