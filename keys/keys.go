// Package keys defines how lacre wraps and unwraps a SOPS data key with master
// keys, and how key groups combine with Shamir secret sharing.
//
// A master key backend (age, OpenPGP, Vault transit, AWS KMS, GCP KMS, Azure Key
// Vault) provides a [Recipient], which wraps a data key into a [Stanza], and an
// [Identity], which unwraps a Stanza. Stanzas are what the file's `sops`
// metadata section stores, one per master key.
//
// An Identity that is not able to unwrap a given stanza (another key type, or a
// different key) returns an error wrapping [ErrIncorrectIdentity], so callers can
// try the next one.
package keys

import (
	"context"
	"errors"
	"maps"

	"github.com/lacre/lacre/keys/keyref"
)

// Stanza types, as named in the SOPS metadata (owned by package keyref).
const (
	TypeAge     = keyref.TypeAge
	TypePGP     = keyref.TypePGP
	TypeKMS     = keyref.TypeKMS
	TypeGCPKMS  = keyref.TypeGCPKMS
	TypeAzureKV = keyref.TypeAzureKV
	TypeVault   = keyref.TypeVault
	TypeHCKMS   = keyref.TypeHCKMS
)

// Types lists every stanza type in the order SOPS stores them within a key
// group when it reads a file.
var Types = []string{TypeKMS, TypeGCPKMS, TypeHCKMS, TypeAzureKV, TypeVault, TypePGP, TypeAge}

// A Stanza is one master key entry of a SOPS file: the public description of
// the master key and the data key (or Shamir share) wrapped by it.
//
// Fields holds the type's identifying fields, named as in the metadata:
// age: recipient; pgp: fp; kms: arn, role, aws_profile; gcp_kms: resource_id;
// azure_kv: vault_url, name, version; hc_vault: vault_address, engine_path,
// key_name; hckms: key_id. Unknown fields read from a file are kept.
type Stanza struct {
	Type      string
	Fields    map[string]string
	Context   map[string]string // AWS KMS encryption context; nil for others
	CreatedAt string            // RFC 3339; empty for age
	Enc       string            // the wrapped data key, as stored
}

// Field returns the named identifying field, or "".
func (s *Stanza) Field(name string) string {
	if s == nil || s.Fields == nil {
		return ""
	}
	return s.Fields[name]
}

// Clone returns a deep copy of s.
func (s *Stanza) Clone() *Stanza {
	c := *s
	c.Fields = maps.Clone(s.Fields)
	c.Context = maps.Clone(s.Context)
	return &c
}

// ID returns the stanza's public key identity as SOPS prints it, for
// messages and listings. It never contains secret material. To tell master
// keys apart, compare Refs (keyref.Ref.ID, keyref.Ref.Matches), which fold
// what SOPS treats as the same key.
func (s *Stanza) ID() string { return s.Ref().String() }

// Ref returns the reference of the stanza's master key.
func (s *Stanza) Ref() keyref.Ref { return keyref.FromFields(s.Type, s.Fields, s.Context) }

// A Group is a key group: any one of its stanzas unwraps the group's data key
// (or, with several groups, the group's Shamir share).
type Group []*Stanza

// A Recipient wraps a data key for one master key.
type Recipient interface {
	Wrap(ctx context.Context, dataKey []byte) (*Stanza, error)
}

// An Identity unwraps stanzas it holds the key for. It returns an error
// wrapping ErrIncorrectIdentity for stanzas that are not its own.
type Identity interface {
	Unwrap(ctx context.Context, s *Stanza) ([]byte, error)
}

// ErrIncorrectIdentity is returned by Identity.Unwrap for a stanza the
// identity cannot unwrap because it is not the stanza's key.
var ErrIncorrectIdentity = errors.New("incorrect identity for this master key")

// A Describer is an optional interface of a Recipient or Identity: a short,
// public description for messages, such as "age identity age1..." or
// "aws kms credentials (default chain)". It never contains secret material.
type Describer interface {
	Describe() string
}

// Describe returns v's public description, or its type name.
func Describe(v any) string {
	if d, ok := v.(Describer); ok {
		return d.Describe()
	}
	return "key"
}
