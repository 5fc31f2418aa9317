package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/awskms"
	"github.com/lacre/lacre/keys/pgp"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/rules"
)

func (b *backends) gpgOptions() pgp.GPGOptions {
	return pgp.GPGOptions{Binary: b.a.env("SOPS_GPG_EXEC"), Env: os.Environ()}
}

// vaultOptions reads the token as sops does: VAULT_TOKEN, else
// ~/.vault-token; and SOPS_HC_VAULT_ALLOWLIST.
func (b *backends) vaultOptions() vault.Options {
	tok := b.a.env("VAULT_TOKEN")
	if tok == "" {
		if home := b.a.env("HOME"); home != "" {
			if data, err := os.ReadFile(filepath.Join(home, ".vault-token")); err == nil {
				tok = strings.TrimSpace(string(data))
			}
		}
	}
	return vault.Options{Token: tok, Namespace: b.a.env("VAULT_NAMESPACE"), Allowlist: vault.ParseAllowlist(b.a.env("SOPS_HC_VAULT_ALLOWLIST"))}
}

func (b *backends) otherRecipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	switch k.Type {
	case keys.TypePGP:
		return pgp.NewGPGRecipient(k.Value, b.gpgOptions()), nil
	case keys.TypeVault:
		return vault.NewRecipient(k.Value, b.vaultOptions())
	case keys.TypeKMS:
		return awskms.NewRecipient(awskms.Key{ARN: k.Value, Role: k.Role, Profile: k.AWSProfile, Context: k.Context}, b.awsOptions())
	}
	return nil, fmt.Errorf("master key type %q is not supported yet", k.Type)
}

func (b *backends) otherRecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	switch s.Type {
	case keys.TypePGP:
		return pgp.RecipientFromStanza(s, b.gpgOptions())
	case keys.TypeVault:
		return vault.RecipientFromStanza(s, b.vaultOptions())
	case keys.TypeKMS:
		return awskms.RecipientFromStanza(s, b.awsOptions())
	}
	return nil, fmt.Errorf("master key type %q is not supported yet", s.Type)
}

func (b *backends) otherIdentities() ([]keys.Identity, []error) {
	// gpg runs only when a file has a pgp key and no age key worked first.
	ids := []keys.Identity{pgp.NewGPGIdentity(b.gpgOptions())}
	if o := b.vaultOptions(); o.Token != "" {
		ids = append(ids, vault.NewIdentity(o))
	}
	// Cloud identities call their service only for stanzas of their type.
	ids = append(ids, awskms.NewIdentity(b.awsOptions()))
	return ids, nil
}

// awsOptions leaves credentials, region profile and endpoint
// (AWS_ENDPOINT_URL) to the SDK's default chain, as sops does.
func (b *backends) awsOptions() awskms.Options { return awskms.Options{} }
