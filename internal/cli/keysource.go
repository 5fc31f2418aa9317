package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/keys/keyref"
	"github.com/lacre/lacre/rules"
)

// keyFlags are the master key flags of encrypt, rotate and groups add.
type keyFlags struct {
	age, pgp, kms, gcpKMS, azureKV, vault []string
	awsProfile                            string
	encryptionContext                     string
}

func (kf *keyFlags) register(cmd interface {
	StringSliceVarP(p *[]string, name, shorthand string, value []string, usage string)
	StringVar(p *string, name, value, usage string)
}, prefix, verb string) {
	short := func(s string) string {
		if prefix == "" {
			return s
		}
		return ""
	}
	cmd.StringSliceVarP(&kf.age, prefix+"age", short("a"), nil, verb+" age recipients, comma separated (env SOPS_AGE_RECIPIENTS)")
	cmd.StringSliceVarP(&kf.pgp, prefix+"pgp", short("p"), nil, verb+" PGP fingerprints, comma separated (env SOPS_PGP_FP)")
	cmd.StringSliceVarP(&kf.kms, prefix+"kms", short("k"), nil, verb+" AWS KMS key ARNs, comma separated, arn+role to assume a role (env SOPS_KMS_ARN)")
	cmd.StringSliceVarP(&kf.gcpKMS, prefix+"gcp-kms", "", nil, verb+" GCP KMS resource IDs, comma separated (env SOPS_GCP_KMS_IDS)")
	cmd.StringSliceVarP(&kf.azureKV, prefix+"azure-kv", "", nil, verb+" Azure Key Vault key URLs, comma separated (env SOPS_AZURE_KEYVAULT_URLS)")
	cmd.StringSliceVarP(&kf.vault, prefix+"hc-vault-transit", "", nil, verb+" Vault transit key URIs, comma separated (env SOPS_VAULT_URIS)")
}

// fromEnv fills empty flags from sops's environment variables.
func (kf *keyFlags) fromEnv(env func(string) string) {
	fill := func(dst *[]string, name string) {
		if len(*dst) == 0 {
			if v := env(name); v != "" {
				*dst = splitList(v)
			}
		}
	}
	fill(&kf.age, "SOPS_AGE_RECIPIENTS")
	fill(&kf.pgp, "SOPS_PGP_FP")
	fill(&kf.kms, "SOPS_KMS_ARN")
	fill(&kf.gcpKMS, "SOPS_GCP_KMS_IDS")
	fill(&kf.azureKV, "SOPS_AZURE_KEYVAULT_URLS")
	fill(&kf.vault, "SOPS_VAULT_URIS")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (kf *keyFlags) empty() bool {
	return len(kf.age)+len(kf.pgp)+len(kf.kms)+len(kf.gcpKMS)+len(kf.azureKV)+len(kf.vault) == 0
}

// parseContext parses --encryption-context k:v,k2:v2.
func parseContext(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range splitList(s) {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return nil, Codef(codeInvalidEncContext, "invalid encryption context %q: use key:value,key2:value2", kv)
		}
		out[k] = v
	}
	return out, nil
}

// ruleKeys turns the flags into rule keys (one group).
func (kf *keyFlags) ruleKeys() ([]rules.Key, error) {
	ctx, err := parseContext(kf.encryptionContext)
	if err != nil {
		return nil, err
	}
	var out []rules.Key
	for _, v := range kf.kms {
		k := keyref.New(keys.TypeKMS, v)
		k.AWSProfile, k.Context = kf.awsProfile, ctx
		out = append(out, k)
	}
	for _, v := range kf.gcpKMS {
		out = append(out, rules.Key{Type: keys.TypeGCPKMS, Value: v})
	}
	for _, v := range kf.azureKV {
		out = append(out, rules.Key{Type: keys.TypeAzureKV, Value: v})
	}
	for _, v := range kf.vault {
		out = append(out, rules.Key{Type: keys.TypeVault, Value: v})
	}
	for _, v := range kf.pgp {
		out = append(out, keyref.New(keys.TypePGP, v))
	}
	for _, v := range kf.age {
		out = append(out, rules.Key{Type: keys.TypeAge, Value: v})
	}
	return out, nil
}

// backends builds recipients and identities from the environment, as the
// sops CLI does. Only the CLI reads the environment; libraries get explicit
// options.
type backends struct {
	a *App

	once sync.Once
	ids  []keys.Identity
	errs []error // problems loading identities, reported if nothing decrypts
}

func (a *App) backends() *backends { return &backends{a: a} }

// recipient builds a recipient for a rule key.
func (b *backends) recipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	switch k.Type {
	case keys.TypeAge:
		r, err := agekeys.ParseRecipient(k.Value)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return b.otherRecipient(ctx, k)
}

// recipientFromStanza rebuilds the recipient of an existing master key.
func (b *backends) recipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	switch s.Type {
	case keys.TypeAge:
		return agekeys.RecipientFromStanza(s)
	}
	return b.otherRecipientFromStanza(ctx, s)
}

// groupsFor builds recipients for key groups.
func (b *backends) groupsFor(ctx context.Context, groups [][]rules.Key) ([][]keys.Recipient, error) {
	var out [][]keys.Recipient
	for _, g := range groups {
		var rg []keys.Recipient
		for _, k := range g {
			r, err := b.recipient(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("%s key %q: %w", k.Type, k.Value, err)
			}
			rg = append(rg, r)
		}
		out = append(out, rg)
	}
	return out, nil
}

// identities returns every identity available to this process.
func (b *backends) identities() []keys.Identity {
	b.once.Do(func() {
		b.ids, b.errs = b.loadAgeIdentities()
		ids, errs := b.otherIdentities()
		b.ids = append(b.ids, ids...)
		b.errs = append(b.errs, errs...)
	})
	return b.ids
}

// loadAgeIdentities collects age identities from every source sops reads:
// SSH keys, SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, SOPS_AGE_KEY_CMD and the default
// keys.txt.
func (b *backends) loadAgeIdentities() ([]keys.Identity, []error) {
	env := b.a.env
	var ids []keys.Identity
	var errs []error
	addText := func(source string, data []byte) {
		got, err := agekeys.ParseIdentities(bytes.NewReader(data))
		if err != nil {
			errs = append(errs, fmt.Errorf("age identities from %s: %w", source, err))
			return
		}
		ids = append(ids, got...)
	}
	addSSH := func(path string, required bool) {
		data, err := os.ReadFile(path)
		if err != nil {
			if required {
				errs = append(errs, fmt.Errorf("ssh key %s: %v", path, err))
			}
			return
		}
		id, err := agekeys.ParseSSHIdentity(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("ssh key %s: %w", path, err))
			return
		}
		ids = append(ids, id)
	}
	if p := env("SOPS_AGE_SSH_PRIVATE_KEY_FILE"); p != "" {
		addSSH(p, true)
	} else if home, err := os.UserHomeDir(); err == nil {
		addSSH(filepath.Join(home, ".ssh", "id_ed25519"), false)
		addSSH(filepath.Join(home, ".ssh", "id_rsa"), false)
	}
	if v := env("SOPS_AGE_KEY"); v != "" {
		addText("SOPS_AGE_KEY", []byte(strings.Join(strings.Fields(v), "\n")))
	}
	if p := env("SOPS_AGE_KEY_FILE"); p != "" {
		if data, err := os.ReadFile(p); err != nil {
			errs = append(errs, fmt.Errorf("SOPS_AGE_KEY_FILE: %v", err))
		} else {
			addText(p, data)
		}
	}
	if c := env("SOPS_AGE_KEY_CMD"); c != "" {
		cmd := exec.Command("sh", "-c", c)
		cmd.Stderr = b.a.Stderr
		out, err := cmd.Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("SOPS_AGE_KEY_CMD failed: %v", err))
		} else {
			addText("SOPS_AGE_KEY_CMD", out)
		}
	}
	if dir := userConfigDir(env); dir != "" {
		p := agekeys.DefaultKeysFile(dir)
		if data, err := os.ReadFile(p); err == nil {
			addText(p, data)
		} else if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s: %v", p, err))
		}
	}
	return ids, errs
}

// userConfigDir is os.UserConfigDir with the environment passed in.
func userConfigDir(env func(string) string) string {
	if d := env("XDG_CONFIG_HOME"); d != "" {
		return d
	}
	if h := env("HOME"); h != "" {
		return filepath.Join(h, ".config")
	}
	d, _ := os.UserConfigDir()
	return d
}

// DecryptionKeys returns the identities lacre decrypt would use, the
// decryption order (SOPS_DECRYPTION_ORDER) and the problems met loading
// them, for commands of package cluster that decrypt (build --decrypt).
func (a *App) DecryptionKeys() (ids []keys.Identity, order []string, problems []error) {
	b := a.backends()
	ids = b.identities()
	return ids, a.order(&decryptFlags{}), b.problems()
}
