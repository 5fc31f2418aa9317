package source

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/ssh"
)

// Errors of signature verification.
var (
	// ErrUnsigned: the Git object carries no signature.
	ErrUnsigned = errors.New("not signed")
	// ErrBadSignature: no trusted key verifies the signature.
	ErrBadSignature = errors.New("signature verification failed")
)

// TrustedKeys are the public keys a signature may be made with, read from a
// GitRepository's spec.verify.secretRef as Flux reads them: entries whose
// key ends in .sshpub hold SSH authorized keys, every other entry (.asc by
// convention) an armored OpenPGP key ring.
type TrustedKeys struct {
	PGP openpgp.EntityList
	SSH []ssh.PublicKey
}

// maxKeyEntry bounds one Secret entry (a Secret is at most 1 MiB anyway).
const maxKeyEntry = 1 << 20

// TrustedKeysFromSecret parses the Secret's entries. An entry that does
// not parse is an error naming its key (never its content).
func TrustedKeysFromSecret(data map[string][]byte) (*TrustedKeys, error) {
	tk := &TrustedKeys{}
	for k, v := range data {
		if len(v) > maxKeyEntry {
			return nil, fmt.Errorf("entry %q is larger than %d bytes", k, maxKeyEntry)
		}
		if strings.HasSuffix(k, ".sshpub") {
			rest := v
			for len(bytes.TrimSpace(rest)) > 0 {
				pk, _, _, r, err := ssh.ParseAuthorizedKey(rest)
				if err != nil {
					return nil, fmt.Errorf("entry %q: invalid SSH public key", k)
				}
				tk.SSH = append(tk.SSH, pk)
				rest = r
			}
			continue
		}
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(v))
		if err != nil {
			return nil, fmt.Errorf("entry %q: invalid OpenPGP key ring", k)
		}
		tk.PGP = append(tk.PGP, el...)
	}
	if len(tk.PGP) == 0 && len(tk.SSH) == 0 {
		return nil, errors.New("no public keys found")
	}
	return tk, nil
}

// VerifyCommit checks c's signature; it returns the fingerprint of the key
// that made it.
func (tk *TrustedKeys) VerifyCommit(c *object.Commit) (string, error) {
	if c == nil || c.PGPSignature == "" {
		return "", ErrUnsigned
	}
	o := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(o); err != nil {
		return "", err
	}
	return tk.verify(o, c.PGPSignature)
}

// VerifyTag checks an annotated tag's signature.
func (tk *TrustedKeys) VerifyTag(t *object.Tag) (string, error) {
	if t == nil || t.PGPSignature == "" {
		return "", ErrUnsigned
	}
	o := &plumbing.MemoryObject{}
	if err := t.EncodeWithoutSignature(o); err != nil {
		return "", err
	}
	return tk.verify(o, t.PGPSignature)
}

func (tk *TrustedKeys) verify(o plumbing.EncodedObject, sig string) (string, error) {
	r, err := o.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	payload, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	if strings.Contains(sig, "-----BEGIN SSH SIGNATURE-----") {
		return tk.verifySSH(payload, []byte(sig))
	}
	if len(tk.PGP) == 0 {
		return "", fmt.Errorf("%w: no OpenPGP keys", ErrBadSignature)
	}
	e, err := openpgp.CheckArmoredDetachedSignature(tk.PGP, bytes.NewReader(payload), strings.NewReader(sig), nil)
	if err != nil || e == nil || e.PrimaryKey == nil {
		return "", fmt.Errorf("%w: unable to verify the OpenPGP signature with the trusted keys", ErrBadSignature)
	}
	return strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint)), nil
}

// verifySSH checks a git SSH signature: the armored sshsig format
// (PROTOCOL.sshsig of OpenSSH) in the "git" namespace.
func (tk *TrustedKeys) verifySSH(payload, armored []byte) (string, error) {
	blk, _ := pem.Decode(armored)
	if blk == nil || blk.Type != "SSH SIGNATURE" {
		return "", fmt.Errorf("%w: malformed SSH signature", ErrBadSignature)
	}
	s := cryptobyte.String(blk.Bytes)
	var pubBlob, ns, reserved, hashAlg, sigBlob []byte
	var version uint32
	if !bytes.HasPrefix(blk.Bytes, []byte("SSHSIG")) || !s.Skip(6) ||
		!s.ReadUint32(&version) || !readString(&s, &pubBlob) || !readString(&s, &ns) ||
		!readString(&s, &reserved) || !readString(&s, &hashAlg) || !readString(&s, &sigBlob) || version != 1 {
		return "", fmt.Errorf("%w: malformed SSH signature", ErrBadSignature)
	}
	if string(ns) != "git" {
		return "", fmt.Errorf("%w: SSH signature namespace %q is not \"git\"", ErrBadSignature, ns)
	}
	var digest []byte
	switch string(hashAlg) {
	case "sha256":
		d := sha256.Sum256(payload)
		digest = d[:]
	case "sha512":
		d := sha512.Sum512(payload)
		digest = d[:]
	default:
		return "", fmt.Errorf("%w: SSH signature hash %q", ErrBadSignature, hashAlg)
	}
	signer, err := ssh.ParsePublicKey(pubBlob)
	if err != nil {
		return "", fmt.Errorf("%w: malformed SSH signature key", ErrBadSignature)
	}
	var trusted ssh.PublicKey
	for _, k := range tk.SSH {
		if bytes.Equal(k.Marshal(), signer.Marshal()) {
			trusted = k
			break
		}
	}
	if trusted == nil {
		return "", fmt.Errorf("%w: SSH key %s is not trusted", ErrBadSignature, ssh.FingerprintSHA256(signer))
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(sigBlob, sig); err != nil {
		return "", fmt.Errorf("%w: malformed SSH signature", ErrBadSignature)
	}
	var signed cryptobyte.Builder
	signed.AddBytes([]byte("SSHSIG"))
	for _, f := range [][]byte{ns, reserved, hashAlg, digest} {
		signed.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f) })
	}
	msg, err := signed.Bytes()
	if err != nil {
		return "", err
	}
	if err := trusted.Verify(msg, sig); err != nil {
		return "", fmt.Errorf("%w: SSH signature does not verify", ErrBadSignature)
	}
	return ssh.FingerprintSHA256(trusted), nil
}

func readString(s *cryptobyte.String, out *[]byte) bool {
	var n uint32
	return s.ReadUint32(&n) && n <= uint32(len(*s)) && s.ReadBytes(out, int(n))
}

// annotatedTag is the annotated tag object name points to, or nil.
func annotatedTag(repo *git.Repository, name plumbing.ReferenceName) *object.Tag {
	if !name.IsTag() {
		return nil
	}
	ref, err := repo.Reference(name, false)
	if err != nil {
		return nil
	}
	t, err := repo.TagObject(ref.Hash())
	if err != nil {
		return nil
	}
	return t
}
