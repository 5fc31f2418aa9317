// Package keyservice owns lacre's side of sops's key service: a Service
// wraps and unwraps data keys with master keys named by type and fields
// (the protocol's Key), Local answers requests with this process's keys
// (what "keyservice" serves), Recipient and Identity use remote services
// (--keyservice) as master keys do, and ParseURI reads sops's
// "protocol://address" syntax. It links no gRPC: package ksgrpc carries a
// Service over the wire, in lacre-cluster only.
package keyservice

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keyref"
)

// A Service wraps and unwraps data keys (or Shamir shares). The master key
// is named by a stanza's Type, Fields and Context; its Enc and CreatedAt
// are ignored. The ciphertext is the stanza's Enc, as the file stores it.
type Service interface {
	Encrypt(ctx context.Context, key *keys.Stanza, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, key *keys.Stanza, ciphertext []byte) ([]byte, error)
}

// Source is what Local answers with: this process's master keys.
type Source interface {
	RecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error)
	Identities() []keys.Identity
}

// Local is the Service of this process's keys, as sops's local key
// service: Encrypt builds the key's recipient, Decrypt tries the
// identities of the process (for age, its age identities, whatever the
// recipient named).
type Local struct{ Src Source }

var _ Service = Local{}

// Encrypt implements Service.
func (l Local) Encrypt(ctx context.Context, key *keys.Stanza, plaintext []byte) ([]byte, error) {
	r, err := l.Src.RecipientFromStanza(ctx, key)
	if err != nil {
		return nil, err
	}
	s, err := r.Wrap(ctx, plaintext)
	if err != nil {
		return nil, err
	}
	return []byte(s.Enc), nil
}

// Decrypt implements Service.
func (l Local) Decrypt(ctx context.Context, key *keys.Stanza, ciphertext []byte) ([]byte, error) {
	s := key.Clone()
	s.Enc = string(ciphertext)
	return keys.UnwrapGroups(ctx, []keys.Group{{s}}, 0, l.Src.Identities(), nil)
}

// Named is a remote Service and the URI it was given as, for messages.
type Named struct {
	URI string
	Service
}

// Template returns the stanza of a master key reference without its
// wrapped key, as Service requests name it.
func Template(r keyref.Ref) (*keys.Stanza, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	s := &keys.Stanza{Type: r.Type, Fields: map[string]string{}}
	switch r.Type {
	case keys.TypeAge:
		s.Fields["recipient"] = r.Value
	case keys.TypePGP:
		s.Fields["fp"] = r.Value
	case keys.TypeKMS:
		s.Fields["arn"] = r.Value
		if r.Role != "" {
			s.Fields["role"] = r.Role
		}
		if r.AWSProfile != "" {
			s.Fields["aws_profile"] = r.AWSProfile
		}
		if len(r.Context) > 0 {
			s.Context = r.Context
		}
	case keys.TypeGCPKMS:
		s.Fields["resource_id"] = r.Value
	case keys.TypeAzureKV:
		u, name, version, err := keyref.ParseAzureKeyURL(r.Value)
		if err != nil {
			return nil, err
		}
		s.Fields["vault_url"], s.Fields["name"], s.Fields["version"] = u, name, version
	case keys.TypeVault:
		addr, engine, name, err := keyref.ParseVaultURI(r.Value)
		if err != nil {
			return nil, err
		}
		s.Fields["vault_address"], s.Fields["engine_path"], s.Fields["key_name"] = addr, engine, name
	case keys.TypeHCKMS:
		s.Fields["key_id"] = r.Value
	default:
		return nil, fmt.Errorf("master key type %q has no key service form", r.Type)
	}
	return s, nil
}

// Recipient wraps with the first of local (nil when the local key service
// is disabled) and the remote services that succeeds, as sops tries its
// key services in order.
type Recipient struct {
	template *keys.Stanza
	local    keys.Recipient
	remote   []Named
}

var _ keys.Recipient = (*Recipient)(nil)

// NewRecipient returns the recipient of the master key template names.
func NewRecipient(template *keys.Stanza, local keys.Recipient, remote []Named) *Recipient {
	t := template.Clone()
	t.Enc, t.CreatedAt = "", ""
	return &Recipient{template: t, local: local, remote: remote}
}

// Describe implements keys.Describer.
func (r *Recipient) Describe() string {
	if r.local != nil {
		return keys.Describe(r.local)
	}
	return r.template.Type + " key " + r.template.ID() + " via a key service"
}

// Wrap implements keys.Recipient.
func (r *Recipient) Wrap(ctx context.Context, dataKey []byte) (*keys.Stanza, error) {
	var errs []error
	if r.local != nil {
		s, err := r.local.Wrap(ctx, dataKey)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	for _, svc := range r.remote {
		ct, err := svc.Encrypt(ctx, r.template, dataKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("key service %s: %v", svc.URI, err))
			continue
		}
		s := r.template.Clone()
		s.Enc = string(ct)
		if s.Type != keys.TypeAge {
			s.CreatedAt = time.Now().UTC().Format(time.RFC3339)
		}
		return s, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("no key service: the local one is disabled (--enable-local-keyservice=false) and no --keyservice is given")
	}
	return nil, errors.Join(errs...)
}

// Identity unwraps every stanza through a remote service.
type Identity struct{ Named }

var _ keys.Identity = Identity{}

// Describe implements keys.Describer.
func (i Identity) Describe() string { return "key service " + i.URI }

// Unwrap implements keys.Identity.
func (i Identity) Unwrap(ctx context.Context, s *keys.Stanza) ([]byte, error) {
	return i.Decrypt(ctx, s, []byte(s.Enc))
}

// ParseURI reads a --keyservice value as sops does: "unix:///path" (or
// "unix://path") is a unix socket, "tcp://host:port" a TCP address (any
// other scheme is a network name of Go's net.Dial).
func ParseURI(uri string) (network, address string, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", fmt.Errorf("key service %q: %v", uri, err)
	}
	switch {
	case u.Scheme == "":
		return "", "", fmt.Errorf("key service %q: use protocol://address, e.g. tcp://127.0.0.1:5000 or unix:///tmp/sops.sock", uri)
	case u.Scheme == "unix":
		address = u.Path
		if u.Host != "" {
			address = u.Host + u.Path
		}
	default:
		address = u.Host
	}
	if address == "" {
		return "", "", fmt.Errorf("key service %q: no address", uri)
	}
	return u.Scheme, address, nil
}
