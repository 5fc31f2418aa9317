package source

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzVerifySSH feeds arbitrary armored SSH signatures and Secret entries
// to the signature check: no panic, and random bytes never verify.
func FuzzVerifySSH(f *testing.F) {
	f.Add([]byte("tree x\n\nm\n"), []byte("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"), []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdvb2QgZW5vdWdoIGZvciBhIGZ1enogc2VlZCEhISE="))
	f.Add([]byte(""), []byte("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n"), []byte(""))
	f.Add([]byte("p"), []byte("garbage"), []byte("not a key"))
	_, priv, _ := ed25519.GenerateKey(nil)
	signer, _ := ssh.NewSignerFromKey(priv)
	f.Fuzz(func(t *testing.T, payload, armored, entry []byte) {
		if tk, err := TrustedKeysFromSecret(map[string][]byte{"k.sshpub": entry}); err == nil {
			if _, err := tk.verifySSH(payload, armored); err == nil {
				t.Fatal("an arbitrary signature verified with an arbitrary key")
			}
		} else if strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error: %q", err)
		}
		tk := &TrustedKeys{SSH: []ssh.PublicKey{signer.PublicKey()}}
		if _, err := tk.verifySSH(payload, armored); err == nil {
			t.Fatal("a signature made without the private key verified")
		} else if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("error is not ErrBadSignature: %v", err)
		}
	})
}
