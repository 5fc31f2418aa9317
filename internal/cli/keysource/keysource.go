// Package keysource owns where lacre's master keys come from: the key flags
// (--age, --pgp, --kms, ...) and sops's environment variables
// (SOPS_AGE_KEY*, SOPS_AGE_SSH_PRIVATE_KEY_FILE, keys.txt, SOPS_GPG_EXEC,
// VAULT_TOKEN, SOPS_DECRYPTION_ORDER, ...), turned into recipients and
// identities. Cloud keys come from a cloudproto.Keys.
package keysource

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/lacre/lacre/internal/cli/cloudproto"
	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
)

// MaxKeyFileSize bounds the key files lacre reads (age and SSH keys,
// ~/.vault-token).
const MaxKeyFileSize = 16 << 20

// Source builds recipients and identities from the environment, as the
// sops CLI does. Only the CLI reads the environment; libraries get explicit
// options.
type Source struct {
	env    func(string) string
	stderr io.Writer // for SOPS_AGE_KEY_CMD
	cloud  cloudproto.Keys

	ks KeyServices

	once sync.Once
	ids  []keys.Identity
	errs []error // problems loading identities, reported if nothing decrypts
}

// New returns the keys of the environment env reads; cloud builds the
// cloud keys, stderr receives SOPS_AGE_KEY_CMD's.
func New(env func(string) string, stderr io.Writer, cloud cloudproto.Keys) *Source {
	return &Source{env: env, stderr: stderr, cloud: cloud}
}

// Recipient builds a recipient for a rule key.
func (b *Source) Recipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	if !b.ks.DisableLocal && len(b.ks.Remote) == 0 {
		return b.localRecipient(ctx, k)
	}
	t, err := keyservice.Template(k)
	if err != nil {
		return nil, err
	}
	return b.serviceRecipient(t, func() (keys.Recipient, error) { return b.localRecipient(ctx, k) }), nil
}

func (b *Source) localRecipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	switch k.Type {
	case keys.TypeAge:
		r, err := b.ageOptions().ParseRecipient(k.Value)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return b.otherRecipient(ctx, k)
}

// RecipientFromStanza rebuilds the recipient of an existing master key.
func (b *Source) RecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	if !b.ks.DisableLocal && len(b.ks.Remote) == 0 {
		return b.localRecipientFromStanza(ctx, s)
	}
	return b.serviceRecipient(s, func() (keys.Recipient, error) { return b.localRecipientFromStanza(ctx, s) }), nil
}

func (b *Source) localRecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	switch s.Type {
	case keys.TypeAge:
		return b.ageOptions().RecipientFromStanza(s)
	}
	return b.otherRecipientFromStanza(ctx, s)
}

// GroupsFor builds recipients for key groups.
func (b *Source) GroupsFor(ctx context.Context, groups [][]rules.Key) ([][]keys.Recipient, error) {
	var out [][]keys.Recipient
	for _, g := range groups {
		var rg []keys.Recipient
		for _, k := range g {
			r, err := b.Recipient(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("%s key %q: %w", k.Type, k.Value, err)
			}
			rg = append(rg, r)
		}
		out = append(out, rg)
	}
	return out, nil
}

// Identities returns every identity available to this process.
func (b *Source) Identities() []keys.Identity {
	b.once.Do(func() {
		if !b.ks.DisableLocal {
			b.ids, b.errs = b.loadAgeIdentities()
			ids, errs := b.otherIdentities()
			b.ids = append(b.ids, ids...)
			b.errs = append(b.errs, errs...)
		}
		if b.ks.DisableLocal && len(b.ks.Remote) == 0 {
			b.errs = append(b.errs, errNoKeyService)
		}
		for _, svc := range b.ks.Remote {
			b.ids = append(b.ids, keyservice.Identity{Named: svc})
		}
	})
	return b.ids
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

// Order is the decryption order: the --decryption-order flag, else
// SOPS_DECRYPTION_ORDER; nil for the default.
func Order(flag string, env func(string) string) []string {
	s := flag
	if s == "" {
		s = env("SOPS_DECRYPTION_ORDER")
	}
	if s == "" {
		return nil
	}
	return SplitList(s)
}

// RecipientsOf rebuilds recipients for the stanzas of key groups, leaving
// out the stanzas for which drop returns true.
func (b *Source) RecipientsOf(ctx context.Context, groups []keys.Group, drop func(*keys.Stanza) bool) ([][]keys.Recipient, error) {
	var out [][]keys.Recipient
	for _, g := range groups {
		var rg []keys.Recipient
		for _, s := range g {
			if drop != nil && drop(s) {
				continue
			}
			r, err := b.RecipientFromStanza(ctx, s)
			if err != nil {
				return nil, fmt.Errorf("%s key %q: %w", s.Type, s.ID(), err)
			}
			rg = append(rg, r)
		}
		out = append(out, rg)
	}
	return out, nil
}

// DataKey unwraps the data key of key groups without decrypting any value.
func (b *Source) DataKey(ctx context.Context, groups []keys.Group, threshold int, order []string) ([]byte, error) {
	k, err := keys.UnwrapGroups(ctx, groups, threshold, b.Identities(), order)
	if err != nil {
		return nil, err
	}
	return k, nil
}
