package cli

import (
	"context"
	"fmt"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
)

func (b *backends) otherRecipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	return nil, fmt.Errorf("master key type %q is not supported yet", k.Type)
}

func (b *backends) otherRecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	return nil, fmt.Errorf("master key type %q is not supported yet", s.Type)
}

func (b *backends) otherIdentities() ([]keys.Identity, []error) {
	return nil, nil
}
