package source

import (
	"errors"
	"strings"
	"testing"

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
