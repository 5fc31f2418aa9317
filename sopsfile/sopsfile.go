// Package sopsfile encrypts and decrypts whole SOPS files: it ties the
// document model (package sops), the stores (package formats) and the master
// keys (package keys) together. The CLI and the controllers both use it.
package sopsfile

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
)

// Rules are the encryption selection rules (package sops owns them); at
// most one may be set. With none set, Encrypt uses
// sops.DefaultUnencryptedSuffix, as SOPS does.
type Rules = sops.Selection

// EncryptOptions configure Encrypt.
type EncryptOptions struct {
	InputFormat, OutputFormat formats.Format
	Store                     formats.Options
	// Groups are the key groups: one group, or several for Shamir sharing.
	Groups          [][]keys.Recipient
	ShamirThreshold int
	Rules           Rules
}

// ErrNoRecipients is returned when Encrypt is given no master keys.
var ErrNoRecipients = errors.New("no master keys to encrypt to")

// EncryptTree encrypts a plaintext tree under a fresh data key wrapped for
// the given groups. The metadata's selection rules must already be set.
func EncryptTree(ctx context.Context, tree *sops.Tree, groups [][]keys.Recipient, threshold int) error {
	if len(groups) == 0 || len(groups[0]) == 0 {
		return ErrNoRecipients
	}
	dataKey := make([]byte, sops.DataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return err
	}
	kg, th, err := keys.WrapGroups(ctx, dataKey, groups, threshold)
	if err != nil {
		return err
	}
	tree.Metadata.KeyGroups = kg
	tree.Metadata.ShamirThreshold = th
	c, err := sops.NewCipher(dataKey)
	if err != nil {
		return err
	}
	return tree.Encrypt(c)
}

// SetSelection makes r the selection rules of a new file of format in: for
// a binary file (one value, always encrypted) every rule is dropped and no
// default is written, as sops 3.13 does, and ignored names the dropped rules
// (sops warns about them); for the other formats it is
// sops.Metadata.SetSelection.
func SetSelection(m *sops.Metadata, in formats.Format, r Rules) (ignored []string, err error) {
	if in == formats.Binary {
		m.Selection, ignored = r.SingleValue()
		return ignored, nil
	}
	return nil, m.SetSelection(r)
}

// Encrypt encrypts a plaintext file.
func Encrypt(ctx context.Context, plaintext []byte, opts EncryptOptions) ([]byte, error) {
	in := formats.NewStore(opts.InputFormat, opts.Store)
	branches, err := in.LoadPlainFile(plaintext)
	if err != nil {
		return nil, err
	}
	tree := sops.Tree{Branches: branches}
	if _, err := SetSelection(&tree.Metadata, opts.InputFormat, opts.Rules); err != nil {
		return nil, err
	}
	if err := EncryptTree(ctx, &tree, opts.Groups, opts.ShamirThreshold); err != nil {
		return nil, err
	}
	out := formats.NewStore(opts.OutputFormat, opts.Store)
	return out.EmitEncryptedFile(tree)
}

// DecryptOptions configure Decrypt.
type DecryptOptions struct {
	InputFormat, OutputFormat formats.Format
	Store                     formats.Options
	Identities                []keys.Identity
	// DecryptionOrder lists stanza types to try first; nil means age, pgp.
	DecryptionOrder []string
	IgnoreMAC       bool
}

// Load parses an encrypted file.
func Load(data []byte, f formats.Format, opts formats.Options) (*sops.Tree, error) {
	t, err := formats.NewStore(f, opts).LoadEncryptedFile(data)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// DataKey unwraps the tree's data key with the identities.
func DataKey(ctx context.Context, tree *sops.Tree, ids []keys.Identity, order []string) ([]byte, error) {
	if len(tree.Metadata.KeyGroups) == 0 {
		return nil, fmt.Errorf("%w: the file has no master keys", keys.ErrNoKey)
	}
	return keys.UnwrapGroups(ctx, tree.Metadata.KeyGroups, tree.Metadata.ShamirThreshold, ids, order)
}

// DecryptTree unwraps the data key, decrypts the tree in place and checks
// its MAC. It returns the cipher, which re-encrypts unchanged values to the
// same ciphertext.
func DecryptTree(ctx context.Context, tree *sops.Tree, ids []keys.Identity, order []string, ignoreMAC bool) (*sops.Cipher, []byte, error) {
	return decryptTree(ctx, tree, ids, order, ignoreMAC, true)
}

// DecryptTreeOnly is DecryptTree for callers that will not re-encrypt the
// tree: the cipher does not remember the values' IVs, which saves time and
// memory on large files.
func DecryptTreeOnly(ctx context.Context, tree *sops.Tree, ids []keys.Identity, order []string, ignoreMAC bool) error {
	_, _, err := decryptTree(ctx, tree, ids, order, ignoreMAC, false)
	return err
}

func decryptTree(ctx context.Context, tree *sops.Tree, ids []keys.Identity, order []string, ignoreMAC, reuseIVs bool) (*sops.Cipher, []byte, error) {
	dataKey, err := DataKey(ctx, tree, ids, order)
	if err != nil {
		return nil, nil, err
	}
	c, err := sops.NewCipher(dataKey)
	if err != nil {
		return nil, nil, err
	}
	if !reuseIVs {
		c.DisableIVReuse()
	}
	if err := tree.Decrypt(c, sops.DecryptOptions{IgnoreMAC: ignoreMAC}); err != nil {
		return nil, nil, err
	}
	return c, dataKey, nil
}

// LoadView is Load for callers that keep the tree only while data is
// unchanged: a store that can parses without copying data, and the tree's
// strings point into it.
func LoadView(data []byte, f formats.Format, opts formats.Options) (*sops.Tree, error) {
	type viewer interface {
		LoadEncryptedFileView([]byte) (sops.Tree, error)
	}
	v, ok := formats.NewStore(f, opts).(viewer)
	if !ok {
		return Load(data, f, opts)
	}
	t, err := v.LoadEncryptedFileView(data)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Decrypt decrypts an encrypted file and returns the plaintext file.
func Decrypt(ctx context.Context, data []byte, opts DecryptOptions) ([]byte, error) {
	tree, err := LoadView(data, opts.InputFormat, opts.Store)
	if err != nil {
		return nil, err
	}
	if err := DecryptTreeOnly(ctx, tree, opts.Identities, opts.DecryptionOrder, opts.IgnoreMAC); err != nil {
		return nil, err
	}
	return formats.NewStore(opts.OutputFormat, opts.Store).EmitPlainFile(tree.Branches)
}
