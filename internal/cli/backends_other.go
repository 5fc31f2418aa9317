package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/awskms"
	"github.com/lacre/lacre/keys/azkv"
	"github.com/lacre/lacre/keys/gcpkms"
	"github.com/lacre/lacre/keys/pgp"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/rules"
	"google.golang.org/api/option"
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
	case keys.TypeGCPKMS:
		o, err := b.gcpOptions()
		if err != nil {
			return nil, err
		}
		return gcpkms.NewRecipient(k.Value, o)
	case keys.TypeAzureKV:
		return azkv.NewRecipient(k.Value, azkv.Options{})
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
	case keys.TypeGCPKMS:
		o, err := b.gcpOptions()
		if err != nil {
			return nil, err
		}
		return gcpkms.RecipientFromStanza(s, o)
	case keys.TypeAzureKV:
		return azkv.RecipientFromStanza(s, azkv.Options{})
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
	var errs []error
	if o, err := b.gcpOptions(); err != nil {
		errs = append(errs, err)
	} else {
		ids = append(ids, gcpkms.NewIdentity(o))
	}
	// Azure: DefaultAzureCredential (environment service principal,
	// workload identity, managed identity, Azure CLI), as sops does.
	ids = append(ids, azkv.NewIdentity(azkv.Options{}))
	return ids, errs
}

// gcpOptions reads what sops reads: GOOGLE_CREDENTIALS (a file path or the
// JSON itself), GOOGLE_OAUTH_ACCESS_TOKEN and SOPS_GCP_KMS_ENDPOINT; with
// none set, Application Default Credentials.
func (b *backends) gcpOptions() (gcpkms.Options, error) {
	b.gcpOnce.Do(func() { b.gcp, b.gcpErr = b.loadGCPOptions() })
	return b.gcp, b.gcpErr
}

func (b *backends) loadGCPOptions() (gcpkms.Options, error) {
	o := gcpkms.Options{Endpoint: b.a.env("SOPS_GCP_KMS_ENDPOINT"), AccessToken: b.a.env("GOOGLE_OAUTH_ACCESS_TOKEN")}
	if c := strings.TrimSpace(b.a.env("GOOGLE_CREDENTIALS")); c != "" {
		if strings.HasPrefix(c, "{") {
			o.CredentialsJSON = []byte(c)
		} else {
			data, err := ReadBounded(c, 1<<20)
			if err != nil {
				return o, fmt.Errorf("GOOGLE_CREDENTIALS: %w", err)
			}
			o.CredentialsJSON = data
		}
	}
	if d := b.a.env("SOPS_GCP_KMS_UNIVERSE_DOMAIN"); d != "" {
		o.ClientOptions = append(o.ClientOptions, option.WithUniverseDomain(d))
	}
	return o, nil
}

// awsOptions leaves credentials, region profile and endpoint
// (AWS_ENDPOINT_URL) to the SDK's default chain, as sops does.
func (b *backends) awsOptions() awskms.Options { return awskms.Options{} }

// ReadBounded reads a small local file (credentials), refusing large ones.
func ReadBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}
