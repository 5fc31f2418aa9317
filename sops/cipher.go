package sops

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// nonceSize is the IV length SOPS uses with AES-GCM (not the usual 12).
const nonceSize = 32

// DataKeySize is the length of a SOPS data key.
const DataKeySize = 32

const encPrefix = "ENC[AES256_GCM,data:"

// ErrNotEncryptedValue is returned when a value that should be encrypted is
// not in the ENC[...] format.
var ErrNotEncryptedValue = errors.New("value is not in the ENC[AES256_GCM,...] format")

// ErrDecryptValue is returned when a value does not decrypt: a wrong data key,
// a tampered value, IV or tag, or a changed key path.
var ErrDecryptValue = errors.New("value failed authentication (wrong key, or tampered value or key name)")

// A Cipher encrypts and decrypts values with one data key.
//
// It remembers the IV of every value it decrypted, so that re-encrypting an
// unchanged value at the same path gives the same ciphertext (as SOPS does, to
// keep diffs small when editing). A Cipher is not safe for concurrent use.
type Cipher struct {
	block cipher.Block
	gcm   cipher.AEAD
	stash map[stashKey][]byte
}

type stashKey struct {
	aad, typ, plaintext string
}

// NewCipher returns a Cipher for a 32-byte data key.
func NewCipher(dataKey []byte) (*Cipher, error) {
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("data key is %d bytes, want %d", len(dataKey), DataKeySize)
	}
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return nil, err
	}
	return &Cipher{block: block, gcm: gcm, stash: map[stashKey][]byte{}}, nil
}

// ValueBytes returns the plaintext bytes of a value and its SOPS type name,
// as both the cipher and the MAC serialise it.
func ValueBytes(v any) (b []byte, typ string, err error) {
	switch v := v.(type) {
	case string:
		return []byte(v), "str", nil
	case []byte:
		return v, "str", nil
	case int:
		return strconv.AppendInt(nil, int64(v), 10), "int", nil
	case float64:
		return strconv.AppendFloat(nil, v, 'f', -1, 64), "float", nil
	case bool:
		if v {
			return []byte("True"), "bool", nil
		}
		return []byte("False"), "bool", nil
	case time.Time:
		b, err := v.MarshalText()
		return b, "time", err
	case Comment:
		return []byte(v.Value), "comment", nil
	}
	return nil, "", fmt.Errorf("unsupported value type %T", v)
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case string:
		return v == ""
	case []byte:
		return len(v) == 0
	case Comment:
		return v.Value == ""
	}
	return false
}

// Encrypt encrypts v with aad as additional data and returns the ENC[...]
// string. Empty strings and comments are not encrypted (they stay "").
func (c *Cipher) Encrypt(v any, aad string) (string, error) {
	if isEmpty(v) {
		return "", nil
	}
	pt, typ, err := ValueBytes(v)
	if err != nil {
		return "", err
	}
	sk := stashKey{aad: aad, typ: typ, plaintext: string(pt)}
	iv, ok := c.stash[sk]
	if !ok {
		iv = make([]byte, nonceSize)
		if _, err := rand.Read(iv); err != nil {
			return "", fmt.Errorf("could not generate an IV: %v", err)
		}
	}
	out := c.gcm.Seal(nil, iv, pt, []byte(aad))
	ct, tag := out[:len(out)-c.gcm.Overhead()], out[len(out)-c.gcm.Overhead():]
	enc := base64.StdEncoding
	var sb strings.Builder
	sb.Grow(len(encPrefix) + enc.EncodedLen(len(ct)) + enc.EncodedLen(len(iv)) + enc.EncodedLen(len(tag)) + 32)
	sb.WriteString(encPrefix)
	sb.WriteString(enc.EncodeToString(ct))
	sb.WriteString(",iv:")
	sb.WriteString(enc.EncodeToString(iv))
	sb.WriteString(",tag:")
	sb.WriteString(enc.EncodeToString(tag))
	sb.WriteString(",type:")
	sb.WriteString(typ)
	sb.WriteString("]")
	return sb.String(), nil
}

// encRegexp is SOPS's own pattern (greedy, unanchored at the end); used when
// the fast parser does not recognise a value.
var encRegexp = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// EncryptedValue is a parsed ENC[...] string.
type EncryptedValue struct {
	Data, IV, Tag []byte
	Type          string
}

// IsEncrypted reports whether s looks like an ENC[...] value.
func IsEncrypted(s string) bool { return strings.HasPrefix(s, encPrefix) }

// ParseEncrypted parses an ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]
// string. The error never contains the input.
func ParseEncrypted(s string) (*EncryptedValue, error) {
	data, iv, tag, typ, ok := splitFast(s)
	if !ok {
		m := encRegexp.FindStringSubmatch(s)
		if m == nil {
			return nil, ErrNotEncryptedValue
		}
		data, iv, tag, typ = m[1], m[2], m[3], m[4]
	}
	var ev EncryptedValue
	var err error
	if ev.Data, err = base64.StdEncoding.DecodeString(data); err != nil {
		return nil, errors.New("malformed encrypted value: bad base64 in data")
	}
	if ev.IV, err = base64.StdEncoding.DecodeString(iv); err != nil {
		return nil, errors.New("malformed encrypted value: bad base64 in iv")
	}
	if ev.Tag, err = base64.StdEncoding.DecodeString(tag); err != nil {
		return nil, errors.New("malformed encrypted value: bad base64 in tag")
	}
	ev.Type = typ
	return &ev, nil
}

// splitFast parses the canonical form, in which data, iv and tag hold no
// commas (base64 never does).
func splitFast(s string) (data, iv, tag, typ string, ok bool) {
	rest, found := strings.CutPrefix(s, encPrefix)
	if !found || !strings.HasSuffix(rest, "]") {
		return
	}
	rest = rest[:len(rest)-1]
	if data, rest, found = strings.Cut(rest, ",iv:"); !found || data == "" || strings.Contains(data, ",") {
		return
	}
	if iv, rest, found = strings.Cut(rest, ",tag:"); !found || iv == "" || strings.Contains(iv, ",") {
		return
	}
	if tag, typ, found = strings.Cut(rest, ",type:"); !found || tag == "" || typ == "" || strings.ContainsAny(typ, ",]") {
		return
	}
	return data, iv, tag, typ, true
}

// Decrypt decrypts an ENC[...] string encrypted with aad. "" decrypts to "".
func (c *Cipher) Decrypt(s, aad string) (any, error) {
	if s == "" {
		return "", nil
	}
	ev, err := ParseEncrypted(s)
	if err != nil {
		return nil, err
	}
	gcm := c.gcm
	if len(ev.IV) != nonceSize {
		// SOPS accepts any IV length on decrypt.
		if len(ev.IV) == 0 {
			return nil, ErrDecryptValue
		}
		gcm, err = c.withNonceSize(len(ev.IV))
		if err != nil {
			return nil, ErrDecryptValue
		}
	}
	if len(ev.Tag) != gcm.Overhead() {
		return nil, ErrDecryptValue
	}
	buf := make([]byte, 0, len(ev.Data)+len(ev.Tag))
	buf = append(append(buf, ev.Data...), ev.Tag...)
	pt, err := gcm.Open(buf[:0], ev.IV, buf, []byte(aad))
	if err != nil {
		return nil, ErrDecryptValue
	}
	var v any
	switch ev.Type {
	case "str", "bytes":
		v = string(pt)
	case "int":
		v, err = strconv.Atoi(string(pt))
	case "float":
		v, err = strconv.ParseFloat(string(pt), 64)
	case "bool":
		v, err = strconv.ParseBool(string(pt))
	case "time":
		var t time.Time
		err = t.UnmarshalText(pt)
		v = t
	case "comment":
		v = Comment{Value: string(pt)}
	default:
		return nil, fmt.Errorf("unknown encrypted value type %q", ev.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("decrypted value is not a valid %s", ev.Type)
	}
	typ := ev.Type
	if typ == "bytes" {
		typ = "str"
	}
	// Remember the IV so that re-encrypting the same value at the same path
	// gives the same ciphertext. Only when the canonical serialisation is
	// byte-identical to what was decrypted: an IV must never be reused for a
	// different plaintext.
	if b, t, err := ValueBytes(v); err == nil && t == typ && string(b) == string(pt) && len(ev.IV) == nonceSize {
		c.stash[stashKey{aad: aad, typ: t, plaintext: string(b)}] = ev.IV
	}
	return v, nil
}

func (c *Cipher) withNonceSize(n int) (cipher.AEAD, error) {
	return cipher.NewGCMWithNonceSize(c.block, n)
}
