package json

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/stores/storetest"
)

func dataKey(t *testing.T, tree sops.Tree) []byte {
	t.Helper()
	if _, err := exec.LookPath("age"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("age is required in CI")
		}
		t.Skip("age is not installed")
	}
	cmd := exec.Command("age", "-d", "-i", "testdata/test.agekey")
	cmd.Stdin = strings.NewReader(tree.Metadata.KeyGroups[0][0].Enc)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	return out
}

// TestSopsInterop reads a file the real sops wrote, re-emits it byte for
// byte, decrypts it and compares with sops's own decryption.
func TestSopsInterop(t *testing.T) {
	enc, _ := os.ReadFile("testdata/sops.enc.json")
	s := New(DefaultIndent)
	tree, err := s.LoadEncryptedFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, enc) {
		t.Fatalf("re-emitting sops's file changed it:\n%s", out)
	}
	c, _ := sops.NewCipher(dataKey(t, tree))
	if err := tree.Decrypt(c, sops.DecryptOptions{}); err != nil {
		t.Fatal(err)
	}
	plain, _ := s.EmitPlainFile(tree.Branches)
	want, _ := os.ReadFile("testdata/sops.dec.json")
	if !bytes.Equal(plain, want) {
		t.Fatalf("decrypted:\n%s\nwant:\n%s", plain, want)
	}
}

func TestLoadErrors(t *testing.T) {
	s := New(DefaultIndent)
	for _, bad := range []string{"[1,2]", "3", `{"a":1,"a":2}`, `{"a":`, `{"a":1} x`, strings.Repeat("[", 2000)} {
		if _, err := s.LoadPlainFile([]byte("{\"x\":" + bad + "}")); err == nil && bad != "[1,2]" && bad != "3" {
			t.Errorf("%q loaded", bad)
		}
		if _, err := s.LoadPlainFile([]byte(bad)); err == nil {
			t.Errorf("%q loaded", bad)
		}
	}
	if _, err := s.LoadPlainFile([]byte(" \n")); !errors.Is(err, sops.ErrNoDocuments) {
		t.Errorf("empty: %v", err)
	}
	if _, err := s.LoadPlainFile([]byte(`{"sops": {}}`)); !errors.Is(err, sops.ErrAlreadyEncrypted) {
		t.Errorf("already encrypted: %v", err)
	}
}

var testCase = storetest.Case{
	New:       func() sops.Store { return New(DefaultIndent) },
	Encrypted: "testdata/sops.enc.json",
	Plain:     "testdata/plain.json",
	MustEmit:  true,
}

func FuzzLoadPlain(f *testing.F) {
	storetest.Seed(f, "testdata/sops.enc.json")
	storetest.FuzzLoadPlain(f, testCase)
}

func FuzzLoadEncrypted(f *testing.F) { storetest.FuzzLoadEncrypted(f, testCase) }
