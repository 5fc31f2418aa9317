package sops

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"time"
)

// FormatVersion is the `version` written into the metadata: the version of
// the SOPS format lacre writes, which the sops CLI compares against its own.
const FormatVersion = "3.13.3"

// macOnlyEncryptedInit is sha256("sops"), hashed first when
// mac_only_encrypted is set.
var macOnlyEncryptedInit, _ = hex.DecodeString("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69")

// Errors of the MAC check. Both make the sops CLI exit with status 51.
var (
	ErrMACMismatch = errors.New("MAC mismatch: the file's values do not match its MAC (modified outside sops/lacre, or tampered)")
	ErrMACDecrypt  = errors.New("cannot decrypt the MAC (tampered MAC or lastmodified, or wrong data key)")
)

// A ValueError reports a value that failed to encrypt or decrypt. Path is the
// key path of the value (key names only, never the value).
type ValueError struct {
	Path string
	Err  error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("could not decrypt value at %s: %v", e.Path, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

func newMAC(m *Metadata) hash.Hash {
	h := sha512.New()
	if m.MACOnlyEncrypted {
		h.Write(macOnlyEncryptedInit)
	}
	return h
}

func macHex(h hash.Hash) string {
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// Encrypt encrypts the tree's values in place following its metadata's
// selection rules, computes the MAC, and sets lastmodified, mac and version.
// The key groups in the metadata are not touched.
func (t *Tree) Encrypt(c *Cipher) error {
	return t.EncryptAt(c, time.Now())
}

// EncryptAt is Encrypt with a given modification time.
func (t *Tree) EncryptAt(c *Cipher, now time.Time) error {
	h := newMAC(&t.Metadata)
	var unencCom *regexp.Regexp
	if t.Metadata.UnencryptedCommentRegex != "" {
		unencCom, _ = regexp.Compile(t.Metadata.UnencryptedCommentRegex)
	}
	err := t.walk(func(v any, aad string, encrypted bool) (any, error) {
		_, isComment := v.(Comment)
		if !isComment && (!t.Metadata.MACOnlyEncrypted || encrypted) {
			b, _, err := ValueBytes(v)
			if err != nil {
				return nil, err
			}
			h.Write(b)
		}
		if !encrypted {
			return v, nil
		}
		out, err := c.Encrypt(v, aad)
		if err != nil {
			return nil, fmt.Errorf("could not encrypt value at %s: %v", displayPath(aad), err)
		}
		if isComment && unencCom != nil && unencCom.MatchString(out) {
			return nil, errors.New("an encrypted comment matches unencrypted_comment_regex; choose a regex that cannot match ENC[...]")
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	t.Metadata.LastModified = now.UTC().Truncate(time.Second)
	mac, err := c.Encrypt(macHex(h), t.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return err
	}
	t.Metadata.MAC = mac
	t.Metadata.Version = FormatVersion
	return nil
}
