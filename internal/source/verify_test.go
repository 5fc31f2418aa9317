package source

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestTrustedKeysFromSecret(t *testing.T) {
	if _, err := TrustedKeysFromSecret(map[string][]byte{}); err == nil {
		t.Fatal("no keys: want an error")
	}
	_, err := TrustedKeysFromSecret(map[string][]byte{"a.sshpub": []byte("not a key secret-ish")})
	if err == nil || !strings.Contains(err.Error(), `"a.sshpub"`) || strings.Contains(err.Error(), "secret-ish") {
		t.Fatalf("bad ssh entry: %v", err)
	}
	_, err = TrustedKeysFromSecret(map[string][]byte{"a.asc": []byte("garbage")})
	if err == nil || !strings.Contains(err.Error(), `"a.asc"`) {
		t.Fatalf("bad pgp entry: %v", err)
	}
	tk := &TrustedKeys{}
	if _, err := tk.VerifyCommit(&object.Commit{}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned commit: %v", err)
	}
	if _, err := tk.VerifyTag(&object.Tag{}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned tag: %v", err)
	}
	c := &object.Commit{Message: "x", PGPSignature: "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"}
	if _, err := tk.VerifyCommit(c); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("malformed ssh signature: %v", err)
	}
}

// TestVerifySSHNamespace signs a commit's payload with ssh-keygen -Y sign:
// in the "git" namespace it verifies, in another it is refused.
func TestVerifySSHNamespace(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	tk, err := TrustedKeysFromSecret(map[string][]byte{"k.sshpub": pub})
	if err != nil {
		t.Fatal(err)
	}
	sig := object.Signature{Name: "a", Email: "a@b", When: time.Unix(1, 0).UTC()}
	c := &object.Commit{Author: sig, Committer: sig, Message: "m\n", TreeHash: plumbing.ZeroHash}
	o := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(o); err != nil {
		t.Fatal(err)
	}
	r, _ := o.Reader()
	payload, _ := io.ReadAll(r)
	sign := func(ns string) string {
		f := filepath.Join(dir, "payload-"+ns)
		if err := os.WriteFile(f, payload, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", ns, "-f", key, f).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		b, _ := os.ReadFile(f + ".sig")
		return string(b)
	}
	c.PGPSignature = sign("git")
	if _, err := tk.VerifyCommit(c); err != nil {
		t.Fatalf("git namespace: %v", err)
	}
	c.PGPSignature = sign("file")
	if _, err := tk.VerifyCommit(c); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "namespace") {
		t.Fatalf("file namespace: %v", err)
	}
	c.PGPSignature = sign("git") // over the payload of message "m"
	c.Message = "other\n"
	if _, err := tk.VerifyCommit(c); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered commit: %v", err)
	}
}

func TestProxyAndClientCertSecrets(t *testing.T) {
	p, err := ProxyFromSecret(map[string][]byte{"address": []byte("http://proxy:3128"), "username": []byte("u"), "password": []byte("pw-secret")})
	if err != nil || p.URL != "http://proxy:3128" || p.Username != "u" || p.Password != "pw-secret" {
		t.Fatalf("%+v %v", p, err)
	}
	for _, d := range []map[string][]byte{{}, {"address": nil}, {"address": []byte("ftp://x")}, {"address": []byte(strings.Repeat("a", 3000))}} {
		if _, err := ProxyFromSecret(d); !errors.Is(err, ErrInvalidSecret) {
			t.Fatalf("%q: %v", d, err)
		}
	}
	if _, _, err := clientCert(&Auth{TLSCert: []byte("x")}); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("cert without key: %v", err)
	}
	if _, _, err := clientCert(&Auth{TLSCert: []byte("x"), TLSKey: []byte("y")}); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("invalid pair: %v", err)
	}
}
