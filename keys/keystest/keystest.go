// Package keystest is the conformance suite every master key backend runs:
// wrap, unwrap, wrong key, tampered ciphertext, and errors free of secrets.
package keystest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
)

// Backend describes one master key under test.
type Backend struct {
	// Type is the stanza type the recipient must produce.
	Type string
	// Recipient wraps to the key under test.
	Recipient keys.Recipient
	// Identity unwraps what Recipient wraps.
	Identity keys.Identity
	// WrongIdentity is an identity of the same backend that does not hold
	// the key; its Unwrap must fail. Nil skips that check.
	WrongIdentity keys.Identity
	// WrongIsIncorrect says WrongIdentity's error must wrap
	// keys.ErrIncorrectIdentity (true for local keys such as age and PGP; a
	// KMS refusing access is an ordinary error).
	WrongIsIncorrect bool
	// Secrets are strings (private keys, tokens) that must never appear in
	// an error message or a stanza.
	Secrets []string
	// Tamper returns a copy of the stanza with its wrapped key altered; nil
	// uses a default that flips a character in the middle of Enc.
	Tamper func(*keys.Stanza) *keys.Stanza
}

// Run runs the conformance suite.
func Run(t *testing.T, b Backend) {
	t.Helper()
	ctx := context.Background()
	for _, size := range []int{32, 33} {
		secret := make([]byte, size)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		secrets := append([]string{hex.EncodeToString(secret), hex.EncodeToString(secret[:16]),
			base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret)}, b.Secrets...)
		noSecret := func(what, s string) {
			t.Helper()
			for _, sec := range secrets {
				if sec != "" && strings.Contains(s, sec) {
					t.Errorf("%s contains secret material: %q", what, s)
				}
			}
		}

		s, err := b.Recipient.Wrap(ctx, secret)
		if err != nil {
			t.Fatalf("wrap %d bytes: %v", size, err)
		}
		if s.Type != b.Type {
			t.Errorf("stanza type = %q, want %q", s.Type, b.Type)
		}
		if s.Enc == "" {
			t.Fatal("stanza has an empty enc")
		}
		if s.ID() == "" {
			t.Error("stanza has an empty ID")
		}
		if s.Type != keys.TypeAge && s.CreatedAt == "" {
			t.Error("stanza has no created_at")
		}
		noSecret("stanza enc", s.Enc)
		noSecret("stanza id", s.ID())

		got, err := b.Identity.Unwrap(ctx, s.Clone())
		if err != nil {
			t.Fatalf("unwrap %d bytes: %v", size, err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("unwrap returned a different key")
		}

		if b.WrongIdentity != nil {
			_, err := b.WrongIdentity.Unwrap(ctx, s.Clone())
			if err == nil {
				t.Error("wrong identity unwrapped the stanza")
			} else {
				noSecret("wrong identity error", err.Error())
				if b.WrongIsIncorrect && !errors.Is(err, keys.ErrIncorrectIdentity) {
					t.Errorf("wrong identity error does not wrap ErrIncorrectIdentity: %v", err)
				}
			}
		}

		tamper := b.Tamper
		if tamper == nil {
			tamper = flipMiddle
		}
		if out, err := b.Identity.Unwrap(ctx, tamper(s)); err == nil && bytes.Equal(out, secret) {
			t.Error("tampered stanza unwrapped to the original key")
		} else if err == nil {
			t.Error("tampered stanza unwrapped without an error")
		} else {
			noSecret("tampered stanza error", err.Error())
		}

		other := &keys.Stanza{Type: "lacre-test-unknown", Fields: map[string]string{"x": "y"}, Enc: "zz"}
		if _, err := b.Identity.Unwrap(ctx, other); !errors.Is(err, keys.ErrIncorrectIdentity) {
			t.Errorf("unwrap of another type's stanza: got %v, want ErrIncorrectIdentity", err)
		}
	}
}

func flipMiddle(s *keys.Stanza) *keys.Stanza {
	c := s.Clone()
	b := []byte(c.Enc)
	// Find a base64-ish character near the middle and change it.
	for i := len(b) / 2; i < len(b); i++ {
		ch := b[i]
		if (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') {
			if ch == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			break
		}
	}
	c.Enc = string(b)
	return c
}

// Sops returns the path of the real sops CLI (PATH, then $GOPATH/bin), the
// interop oracle. Without it the test is skipped, or fails when CI=true.
func Sops(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("sops"); err == nil {
		return p
	}
	out, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "sops")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sops is required in CI")
		}
		t.Skip("sops is not installed")
	}
	return p
}
