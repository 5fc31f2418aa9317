package keysource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lacre/lacre/internal/cli/cloudproto"
	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/pgp"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/rules"
)

func (b *Source) gpgOptions() pgp.GPGOptions {
	return pgp.GPGOptions{Binary: b.env("SOPS_GPG_EXEC"), Env: os.Environ()}
}

// vaultOptions reads the token as sops does: VAULT_TOKEN, else
// ~/.vault-token; and SOPS_HC_VAULT_ALLOWLIST (an invalid list allows
// no address).
func (b *Source) vaultOptions() vault.Options {
	tok := b.env("VAULT_TOKEN")
	if tok == "" {
		if home := b.env("HOME"); home != "" {
			if data, err := ReadBounded(filepath.Join(home, ".vault-token"), MaxKeyFileSize); err == nil {
				tok = strings.TrimSpace(string(data))
			}
		}
	}
	o := vault.Options{Token: tok, Namespace: b.env("VAULT_NAMESPACE")}
	var err error
	if o.Allowlist, err = vault.ParseAllowlist(b.env("SOPS_HC_VAULT_ALLOWLIST")); err != nil {
		// An invalid list allows nothing (fail closed), and says why.
		o.Allowlist, o.AllowHint = []string{}, "SOPS_HC_VAULT_ALLOWLIST: "+err.Error()
	}
	return o
}

func (b *Source) otherRecipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	switch k.Type {
	case keys.TypePGP:
		return pgp.NewGPGRecipient(k.Value, b.gpgOptions()), nil
	case keys.TypeVault:
		return vault.NewRecipient(k.Value, b.vaultOptions())
	}
	if cloudproto.IsCloudType(k.Type) {
		return b.cloud.Recipient(ctx, k)
	}
	return nil, fmt.Errorf("master key type %q is not supported yet", k.Type)
}

func (b *Source) otherRecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	switch s.Type {
	case keys.TypePGP:
		return pgp.RecipientFromStanza(s, b.gpgOptions())
	case keys.TypeVault:
		return vault.RecipientFromStanza(s, b.vaultOptions())
	}
	if cloudproto.IsCloudType(s.Type) {
		return b.cloud.RecipientFromStanza(ctx, s)
	}
	return nil, fmt.Errorf("master key type %q is not supported yet", s.Type)
}

func (b *Source) otherIdentities() ([]keys.Identity, []error) {
	// gpg runs only when a file has a pgp key and no age key worked first.
	ids := []keys.Identity{pgp.NewGPGIdentity(b.gpgOptions())}
	if o := b.vaultOptions(); o.Token != "" {
		ids = append(ids, vault.NewIdentity(o))
	}
	// Cloud identities call their service only for stanzas of their type.
	cloud, errs := b.cloud.Identities()
	return append(ids, cloud...), errs
}

// Problems returns the problems met loading keys: this process's, and
// those of the companion when it was asked about cloud keys.
func (b *Source) Problems() []error {
	errs := b.errs
	if p, ok := b.cloud.(interface{ Problems() []error }); ok {
		errs = append(errs[:len(errs):len(errs)], p.Problems()...)
	}
	return errs
}

// ReadBounded reads a small local file (credentials, keys, .sops.yaml),
// refusing large ones: a regular file by its size, before reading it.
func ReadBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// KeyServices says which key services wrap and unwrap data keys, as sops's
// --enable-local-keyservice and --keyservice do: this process's keys
// (unless DisableLocal), then each remote service in order.
type KeyServices struct {
	DisableLocal bool
	Remote       []keyservice.Named
}

// UseKeyServices sets the key services; call it before any other method.
func (b *Source) UseKeyServices(ks KeyServices) { b.ks = ks }

// serviceRecipient is the recipient of the master key template names
// through the key services; local builds this process's recipient, whose
// failure counts as the local service's.
func (b *Source) serviceRecipient(template *keys.Stanza, local func() (keys.Recipient, error)) keys.Recipient {
	var r keys.Recipient
	if !b.ks.DisableLocal {
		var err error
		if r, err = local(); err != nil {
			r = failedRecipient{err}
		}
	}
	return keyservice.NewRecipient(template, r, b.ks.Remote)
}

// failedRecipient is a local recipient that could not be built.
type failedRecipient struct{ err error }

func (f failedRecipient) Wrap(context.Context, []byte) (*keys.Stanza, error) { return nil, f.err }

var errNoKeyService = errors.New("no key service: the local one is disabled (--enable-local-keyservice=false or SOPS_ENABLE_LOCAL_KEYSERVICE) and no --keyservice is given")

// VaultOptions are the Vault token, namespace and allowlist of the
// environment, for Vault requests other than transit (publish's KV writes).
func (b *Source) VaultOptions() vault.Options { return b.vaultOptions() }
