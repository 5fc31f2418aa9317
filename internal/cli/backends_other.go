package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/pgp"
	"github.com/lacre/lacre/rules"
)

func (b *backends) gpgOptions() pgp.GPGOptions {
	return pgp.GPGOptions{Binary: b.a.env("SOPS_GPG_EXEC"), Env: os.Environ()}
}

func (b *backends) otherRecipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	switch k.Type {
	case keys.TypePGP:
		return pgp.NewGPGRecipient(k.Value, b.gpgOptions()), nil
	}
	return nil, fmt.Errorf("master key type %q is not supported yet", k.Type)
}

func (b *backends) otherRecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	switch s.Type {
	case keys.TypePGP:
		return pgp.RecipientFromStanza(s, b.gpgOptions())
	}
	return nil, fmt.Errorf("master key type %q is not supported yet", s.Type)
}

func (b *backends) otherIdentities() ([]keys.Identity, []error) {
	// gpg runs only when a file has a pgp key and no age key worked first.
	return []keys.Identity{pgp.NewGPGIdentity(b.gpgOptions())}, nil
}
