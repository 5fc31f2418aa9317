package sops

import (
	"bytes"
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
	"unsafe"
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
	// buf holds the decoded bytes of the value being decrypted, or the
	// sealed bytes of the value being encrypted.
	buf openBuf
	// ivPool holds random bytes for the IVs of the next values.
	ivPool []byte
}

// openBuf is the memory of one decrypting goroutine: scratch for the
// decoded bytes of a value, and arena, a chunk that plaintext strings are
// carved from (one allocation for many small values).
type openBuf struct {
	scratch, arena []byte
}

// arenaChunk is the size of the chunks plaintexts are carved from; larger
// plaintexts get their own allocation.
const arenaChunk = 32 << 10

// str returns b as a string that owns its bytes: carved from the arena,
// which is only ever appended to, so earlier strings never change.
func (ob *openBuf) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaChunk/4 {
		return string(b)
	}
	if cap(ob.arena)-len(ob.arena) < len(b) {
		ob.arena = make([]byte, 0, arenaChunk)
	}
	start := len(ob.arena)
	ob.arena = append(ob.arena, b...)
	return unsafe.String(&ob.arena[start], len(b))
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
	var iv []byte
	if c.stash != nil {
		iv = c.stash[stashKey{aad: aad, typ: typ, plaintext: string(pt)}]
	}
	if iv == nil {
		if iv, err = c.newIV(); err != nil {
			return "", err
		}
	}
	sealed := c.gcm.Seal(c.buf.scratch[:0], iv, pt, bytesOf(aad))
	c.buf.scratch = sealed[:0]
	ct, tag := sealed[:len(sealed)-c.gcm.Overhead()], sealed[len(sealed)-c.gcm.Overhead():]
	enc := base64.StdEncoding
	out := make([]byte, 0, len(encPrefix)+enc.EncodedLen(len(ct))+enc.EncodedLen(len(iv))+enc.EncodedLen(len(tag))+len(",iv:,tag:,type:]")+len(typ))
	out = append(out, encPrefix...)
	out = enc.AppendEncode(out, ct)
	out = append(out, ",iv:"...)
	out = enc.AppendEncode(out, iv)
	out = append(out, ",tag:"...)
	out = enc.AppendEncode(out, tag)
	out = append(out, ",type:"...)
	out = append(out, typ...)
	out = append(out, ']')
	return unsafe.String(unsafe.SliceData(out), len(out)), nil // out is not used again
}

// newIV returns a fresh random IV, from a pool filled by one read of
// crypto/rand for many values.
func (c *Cipher) newIV() ([]byte, error) {
	if len(c.ivPool) < nonceSize {
		c.ivPool = make([]byte, 128*nonceSize)
		if _, err := rand.Read(c.ivPool); err != nil {
			return nil, fmt.Errorf("could not generate an IV: %v", err)
		}
	}
	iv := c.ivPool[:nonceSize:nonceSize]
	c.ivPool = c.ivPool[nonceSize:]
	return iv, nil
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
	if !found || rest == "" || rest[len(rest)-1] != ']' {
		return
	}
	rest = rest[:len(rest)-1]
	field := func(name string) (v string, ok bool) {
		if rest, ok = strings.CutPrefix(rest, name); !ok {
			return "", false
		}
		i := strings.IndexByte(rest, ',')
		if i <= 0 {
			return "", false
		}
		v, rest = rest[:i], rest[i:]
		return v, true
	}
	if data, ok = field(""); !ok {
		return
	}
	if iv, ok = field(",iv:"); !ok {
		return
	}
	if tag, ok = field(",tag:"); !ok {
		return
	}
	if typ, found = strings.CutPrefix(rest, ",type:"); !found || typ == "" || strings.ContainsAny(typ, ",]") {
		return "", "", "", "", false
	}
	return data, iv, tag, typ, true
}

// DisableIVReuse makes the cipher stop remembering the IVs of the values it
// decrypts. Callers that only decrypt (and never re-encrypt) save that
// bookkeeping; values encrypted afterwards get fresh IVs.
func (c *Cipher) DisableIVReuse() { c.stash = nil }

// Decrypt decrypts an ENC[...] string encrypted with aad. "" decrypts to "".
func (c *Cipher) Decrypt(s, aad string) (any, error) {
	if s == "" {
		return "", nil
	}
	r := c.open(s, aad, &c.buf)
	if r.err != nil {
		return nil, r.err
	}
	c.remember(&r, aad)
	return r.v, nil
}

// opened is one decrypted value, before its IV is remembered.
type opened struct {
	v   any
	pt  string // the plaintext, when it may be remembered with iv
	typ string
	iv  []byte // a copy, when the IV is to be remembered
	err error
}

// bytesOf views a string as bytes, for callees that only read them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// open decrypts s, using ob for the decoded bytes and the plaintext. It
// does not touch the cipher's state, so calls with different buffers may run
// concurrently.
func (c *Cipher) open(s, aad string, ob *openBuf) (r opened) {
	buf, iv, n, typ, err := decodeValue(s, ob)
	if err != nil {
		r.err = err
		return
	}
	r.typ = typ
	gcm := c.gcm
	if len(iv) != nonceSize {
		// SOPS accepts any IV length on decrypt.
		if len(iv) == 0 {
			r.err = ErrDecryptValue
			return
		}
		gcm, err = c.withNonceSize(len(iv))
		if err != nil {
			r.err = ErrDecryptValue
			return
		}
	}
	if len(buf)-n != gcm.Overhead() {
		r.err = ErrDecryptValue
		return
	}
	pt, err := gcm.Open(buf[:0], iv, buf, bytesOf(aad))
	if err != nil {
		r.err = ErrDecryptValue
		return
	}
	canonical := r.setValue(pt, ob)
	if r.err != nil {
		return
	}
	if canonical && len(iv) == nonceSize && c.stash != nil {
		r.iv = bytes.Clone(iv)
	}
	return r
}

// decodeValue splits an ENC[...] string and decodes it: buf holds data||tag
// (contiguous, as Open wants), n is the length of data. In the usual form,
// the bytes are decoded into ob's scratch buffer (one allocation at most).
func decodeValue(s string, ob *openBuf) (buf, iv []byte, n int, typ string, err error) {
	data, ivs, tag, typ, ok := splitFast(s)
	if !ok {
		ev, err := ParseEncrypted(s)
		if err != nil {
			return nil, nil, 0, "", err
		}
		buf = append(append(make([]byte, 0, len(ev.Data)+len(ev.Tag)), ev.Data...), ev.Tag...)
		return buf, ev.IV, len(ev.Data), ev.Type, nil
	}
	scratch := &ob.scratch
	enc := base64.StdEncoding
	nd, nt := enc.DecodedLen(len(data)), enc.DecodedLen(len(tag))
	need := nd + nt + enc.DecodedLen(len(ivs))
	if cap(*scratch) < need {
		*scratch = make([]byte, max(need, 2*cap(*scratch)))
	}
	b := (*scratch)[:need]
	if n, err = enc.Decode(b, bytesOf(data)); err != nil {
		return nil, nil, 0, "", errors.New("malformed encrypted value: bad base64 in data")
	}
	ni, err := enc.Decode(b[nd+nt:], bytesOf(ivs))
	if err != nil {
		return nil, nil, 0, "", errors.New("malformed encrypted value: bad base64 in iv")
	}
	iv = b[nd+nt : nd+nt+ni : nd+nt+ni]
	nt, err = enc.Decode(b[n:], bytesOf(tag))
	if err != nil {
		return nil, nil, 0, "", errors.New("malformed encrypted value: bad base64 in tag")
	}
	return b[:n+nt], iv, n, typ, nil
}

// setValue sets r.v from the plaintext pt of type r.typ, or r.err. It
// reports whether the value's IV may be remembered: only when the value's
// canonical serialisation is byte-identical to what was decrypted, since an
// IV must never be reused for a different plaintext (r.pt is then set).
func (r *opened) setValue(pt []byte, ob *openBuf) (canonical bool) {
	var err error
	switch r.typ {
	case "str", "bytes":
		str := ob.str(pt)
		r.v, r.pt, canonical = str, str, true
	case "int":
		r.v, err = strconv.Atoi(string(pt))
	case "float":
		r.v, err = strconv.ParseFloat(string(pt), 64)
	case "bool":
		r.v, err = strconv.ParseBool(string(pt))
	case "time":
		var t time.Time
		err = t.UnmarshalText(pt)
		r.v = t
	case "comment":
		str := ob.str(pt)
		r.v, r.pt, canonical = Comment{Value: str}, str, true
	default:
		r.err = fmt.Errorf("unknown encrypted value type %q", r.typ)
		return false
	}
	if err != nil {
		r.v = nil
		r.err = fmt.Errorf("decrypted value is not a valid %s", r.typ)
		return false
	}
	if r.typ == "bytes" {
		r.typ = "str"
	}
	if !canonical {
		if b, t, err := ValueBytes(r.v); err == nil && t == r.typ && string(b) == string(pt) {
			r.pt, canonical = string(pt), true
		}
	}
	return canonical
}

// remember stashes the IV of an opened value so that re-encrypting the same
// value at the same path gives the same ciphertext.
func (c *Cipher) remember(r *opened, aad string) {
	if c.stash == nil || r.iv == nil {
		return
	}
	c.stash[stashKey{aad: aad, typ: r.typ, plaintext: r.pt}] = r.iv
}

func (c *Cipher) withNonceSize(n int) (cipher.AEAD, error) {
	return cipher.NewGCMWithNonceSize(c.block, n)
}
