// Package pgp implements OpenPGP master keys. On the command line it uses
// the gpg binary, as sops does, so gpg-agent, passphrases and smartcards
// work; in the cluster it decrypts in memory with ProtonMail/go-crypto from
// armored private keys, with no gpg binary and no keyring on disk.
package pgp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"

	"github.com/lacre/lacre/keys"
)

// maxKeySize bounds armored key input.
const maxKeySize = 4 << 20

// GPGOptions say how to run gpg.
type GPGOptions struct {
	// Binary is the gpg executable (default "gpg").
	Binary string
	// HomeDir is passed as --homedir when set.
	HomeDir string
	// Env is the environment of gpg (default: the process's).
	Env []string
}

func (o GPGOptions) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	bin := o.Binary
	if bin == "" {
		bin = "gpg"
	}
	if o.HomeDir != "" {
		args = append([]string{"--homedir", o.HomeDir}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = o.Env
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &gpgError{err: err, stderr: lastLines(stderr.String(), 3)}
	}
	return out, nil
}

type gpgError struct {
	err    error
	stderr string
}

func (e *gpgError) Error() string {
	if e.stderr == "" {
		return "gpg: " + e.err.Error()
	}
	return "gpg: " + e.err.Error() + ": " + e.stderr
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// NormalizeFingerprint removes spaces and upper-cases a fingerprint.
func NormalizeFingerprint(fp string) string {
	return strings.ToUpper(strings.ReplaceAll(fp, " ", ""))
}

func newStanza(fp, enc string) *keys.Stanza {
	return &keys.Stanza{
		Type:      keys.TypePGP,
		Fields:    map[string]string{"fp": fp},
		CreatedAt: time.Now().UTC().Format(time.RFC3339),
		Enc:       strings.TrimRight(enc, "\n"),
	}
}

// GPGRecipient encrypts to a fingerprint with the gpg binary.
type GPGRecipient struct {
	fp   string
	opts GPGOptions
}

var (
	_ keys.Recipient = (*GPGRecipient)(nil)
	_ keys.Recipient = (*ArmoredRecipient)(nil)
	_ keys.Identity  = (*GPGIdentity)(nil)
	_ keys.Identity  = (*Identity)(nil)
)

// NewGPGRecipient returns a recipient for a fingerprint in gpg's keyring.
func NewGPGRecipient(fp string, opts GPGOptions) *GPGRecipient {
	return &GPGRecipient{fp: strings.ReplaceAll(fp, " ", ""), opts: opts}
}

// RecipientFromStanza returns the gpg recipient of an existing stanza.
func RecipientFromStanza(s *keys.Stanza, opts GPGOptions) (keys.Recipient, error) {
	if s.Type != keys.TypePGP || s.Field("fp") == "" {
		return nil, errors.New("not a pgp stanza")
	}
	return NewGPGRecipient(s.Field("fp"), opts), nil
}

// Describe implements keys.Describer.
func (r *GPGRecipient) Describe() string { return "pgp key " + r.fp }

// StanzaType implements keys.Typed.
func (r *GPGRecipient) StanzaType() string { return keys.TypePGP }

// Wrap encrypts the data key with gpg.
func (r *GPGRecipient) Wrap(ctx context.Context, dataKey []byte) (*keys.Stanza, error) {
	fp := NormalizeFingerprint(r.fp)
	trusted := fp
	if len(trusted) > 16 {
		trusted = trusted[len(trusted)-16:]
	}
	out, err := r.opts.run(ctx, dataKey, "--batch", "--no-default-recipient", "--yes", "--encrypt", "-a", "-r", r.fp, "--trusted-key", trusted, "--no-encrypt-to")
	if err != nil {
		return nil, fmt.Errorf("encrypting to pgp key %s: %w", r.fp, err)
	}
	return newStanza(r.fp, string(out)), nil
}

// ArmoredRecipient encrypts in-process to an armored public key.
type ArmoredRecipient struct {
	entity *openpgp.Entity
	fp     string
}

// NewArmoredRecipient parses an armored public key.
func NewArmoredRecipient(armored []byte) (*ArmoredRecipient, error) {
	if len(armored) > maxKeySize {
		return nil, errors.New("pgp key is too large")
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil || len(ring) == 0 {
		return nil, errors.New("malformed armored pgp public key")
	}
	e := ring[0]
	return &ArmoredRecipient{entity: e, fp: strings.ToUpper(fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))}, nil
}

// Fingerprint returns the key's fingerprint.
func (r *ArmoredRecipient) Fingerprint() string { return r.fp }

// Describe implements keys.Describer.
func (r *ArmoredRecipient) Describe() string { return "pgp key " + r.fp }

// StanzaType implements keys.Typed.
func (r *ArmoredRecipient) StanzaType() string { return keys.TypePGP }

// Wrap encrypts the data key in-process.
func (r *ArmoredRecipient) Wrap(_ context.Context, dataKey []byte) (*keys.Stanza, error) {
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, "PGP MESSAGE", nil)
	if err != nil {
		return nil, err
	}
	w, err := openpgp.Encrypt(aw, []*openpgp.Entity{r.entity}, nil, &openpgp.FileHints{IsBinary: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("encrypting to pgp key %s: %v", r.fp, err)
	}
	if err := keys.WriteAndClose(dataKey, w, aw); err != nil {
		return nil, err
	}
	return newStanza(r.fp, buf.String()), nil
}

// GPGIdentity decrypts with the gpg binary and whatever secret keys gpg
// (and gpg-agent) has.
type GPGIdentity struct {
	opts GPGOptions
}

// NewGPGIdentity returns an identity backed by gpg.
func NewGPGIdentity(opts GPGOptions) *GPGIdentity { return &GPGIdentity{opts: opts} }

// Describe implements keys.Describer.
func (i *GPGIdentity) Describe() string { return "gpg keyring" }

// StanzaType implements keys.Typed.
func (i *GPGIdentity) StanzaType() string { return keys.TypePGP }

// Unwrap decrypts a pgp stanza with gpg.
func (i *GPGIdentity) Unwrap(ctx context.Context, s *keys.Stanza) ([]byte, error) {
	if s.Type != keys.TypePGP {
		return nil, keys.ErrIncorrectIdentity
	}
	out, err := i.opts.run(ctx, []byte(s.Enc), "--batch", "--quiet", "--decrypt")
	if err != nil {
		var ge *gpgError
		if errors.As(err, &ge) && strings.Contains(ge.stderr, "No secret key") {
			return nil, fmt.Errorf("%w: gpg has no secret key for it", keys.ErrIncorrectIdentity)
		}
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("gpg is not installed: %v", err)
		}
		return nil, err
	}
	return out, nil
}

// Identity holds armored private keys in memory.
type Identity struct {
	ring openpgp.EntityList
	fps  []string
}

// ParseArmoredIdentities parses one or more armored private keys (as in a
// Flux decryption Secret's *.asc entries). Passphrase-protected keys are
// refused.
func ParseArmoredIdentities(data []byte) (*Identity, error) {
	if len(data) > maxKeySize {
		return nil, errors.New("pgp key is too large")
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, errors.New("malformed armored pgp private key")
	}
	id := &Identity{}
	for _, e := range ring {
		if e.PrivateKey == nil {
			continue
		}
		if e.PrivateKey.Encrypted {
			return nil, fmt.Errorf("pgp key %X is passphrase-protected, which is not supported here", e.PrimaryKey.Fingerprint)
		}
		for _, sk := range e.Subkeys {
			if sk.PrivateKey != nil && sk.PrivateKey.Encrypted {
				return nil, fmt.Errorf("pgp key %X has a passphrase-protected subkey, which is not supported here", e.PrimaryKey.Fingerprint)
			}
		}
		id.ring = append(id.ring, e)
		id.fps = append(id.fps, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))
	}
	if len(id.ring) == 0 {
		return nil, errors.New("no pgp private key found")
	}
	return id, nil
}

// Fingerprints returns the keys' primary fingerprints.
func (i *Identity) Fingerprints() []string { return i.fps }

// Describe implements keys.Describer.
func (i *Identity) Describe() string { return "pgp private key " + strings.Join(i.fps, ",") }

// StanzaType implements keys.Typed.
func (i *Identity) StanzaType() string { return keys.TypePGP }

// Unwrap decrypts a pgp stanza in memory.
func (i *Identity) Unwrap(_ context.Context, s *keys.Stanza) ([]byte, error) {
	if s.Type != keys.TypePGP {
		return nil, keys.ErrIncorrectIdentity
	}
	blk, err := armor.Decode(strings.NewReader(s.Enc))
	if err != nil {
		return nil, errors.New("malformed pgp stanza: not an armored message")
	}
	md, err := openpgp.ReadMessage(blk.Body, i.ring, nil, nil)
	if err != nil {
		if errors.Is(err, pgperrors.ErrKeyIncorrect) {
			return nil, keys.ErrIncorrectIdentity
		}
		return nil, fmt.Errorf("malformed or tampered pgp stanza: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, 1024))
	if err != nil {
		return nil, fmt.Errorf("malformed or tampered pgp stanza: %v", err)
	}
	if md.SignatureError != nil {
		return nil, fmt.Errorf("pgp stanza: %v", md.SignatureError)
	}
	return out, nil
}
