// Package storetest owns the tests every store shares: re-emitting a file
// the real sops wrote byte for byte, the plain-file load/emit fuzz target
// and the encrypted-file fuzz target, and loading fuzz seeds (a missing seed
// file fails the test). Each store's tests call it with its own files.
package storetest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lacre/lacre/sops"
)

// SopsVersion is the sops version that wrote the testdata files.
const SopsVersion = "3.13.3"

// A Case describes one store's test files.
type Case struct {
	New       func() sops.Store
	Encrypted string // a file the real sops wrote, e.g. testdata/sops.enc.env
	Plain     string // a plaintext file, e.g. testdata/plain.env
	// Reemit is how a loaded plain file's output must load again: nil
	// requires the second emit to equal the first (stable).
	Reemit func(t *testing.T, s sops.Store, out []byte)
	// MustEmit requires every plain file that loads to emit.
	MustEmit bool
}

// Seed adds the files as fuzz seeds; a missing file fails the test.
func Seed(f *testing.F, paths ...string) {
	f.Helper()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatalf("fuzz seed: %v", err)
		}
		f.Add(b)
	}
}

// SopsBytes re-emits a file the real sops wrote, byte for byte.
func SopsBytes(t *testing.T, c Case) {
	t.Helper()
	tree := reemit(t, c)
	if len(tree.Metadata.KeyGroups) != 1 || tree.Metadata.Version != SopsVersion {
		t.Fatalf("metadata: %+v", tree.Metadata)
	}
}

// reemit loads c.Encrypted, checks that the store writes it back byte for
// byte and returns the loaded tree.
func reemit(t *testing.T, c Case) sops.Tree {
	t.Helper()
	enc, err := os.ReadFile(c.Encrypted)
	if err != nil {
		t.Fatal(err)
	}
	s := c.New()
	tree, err := s.LoadEncryptedFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, enc) {
		t.Fatalf("re-emitted file differs:\n%s\n--- sops wrote:\n%s", out, enc)
	}
	return tree
}

// FuzzLoadPlain checks that a plain file that loads emits a file that
// loads again (and, unless c.Reemit says otherwise, emits the same bytes).
// It seeds c.Plain; callers may add seeds before.
func FuzzLoadPlain(f *testing.F, c Case) {
	Seed(f, c.Plain)
	f.Fuzz(func(t *testing.T, in []byte) {
		s := c.New()
		b, err := s.LoadPlainFile(in)
		if err != nil {
			return
		}
		out, err := s.EmitPlainFile(b)
		if err != nil {
			if c.MustEmit {
				t.Fatalf("loaded file does not emit: %v", err)
			}
			return
		}
		if c.Reemit != nil {
			c.Reemit(t, s, out)
			return
		}
		b2, err := s.LoadPlainFile(out)
		if err != nil {
			t.Fatalf("emitted file does not load: %v\n%s", err, out)
		}
		out2, err := s.EmitPlainFile(b2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("load/emit not stable:\n%q\n%q", out, out2)
		}
	})
}

// FuzzLoadEncrypted checks that loading any input does not panic.
func FuzzLoadEncrypted(f *testing.F, c Case) {
	Seed(f, c.Encrypted)
	f.Fuzz(func(t *testing.T, in []byte) { _, _ = c.New().LoadEncryptedFile(in) })
}

// Decrypted re-emits c.Encrypted as SopsBytes does, decrypts it with the
// data key that the real age CLI unwraps with keyFile, and returns the
// store's plain output for the caller to compare with sops's.
func Decrypted(t *testing.T, c Case, keyFile string) []byte {
	t.Helper()
	tree := reemit(t, c)
	cipher, err := sops.NewCipher(ageDataKey(t, tree, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Decrypt(cipher, sops.DecryptOptions{}); err != nil {
		t.Fatal(err)
	}
	plain, err := c.New().EmitPlainFile(tree.Branches)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// ageDataKey unwraps the file's first age stanza with the real age CLI.
func ageDataKey(t *testing.T, tree sops.Tree, keyFile string) []byte {
	t.Helper()
	if _, err := exec.LookPath("age"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("age is required in CI")
		}
		t.Skip("age is not installed")
	}
	cmd := exec.Command("age", "-d", "-i", keyFile)
	cmd.Stdin = strings.NewReader(tree.Metadata.KeyGroups[0][0].Enc)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	return out
}
