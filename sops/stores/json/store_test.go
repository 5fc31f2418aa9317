package json

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/stores/storetest"
)

// TestSopsInterop reads a file the real sops wrote, re-emits it byte for
// byte, decrypts it and compares with sops's own decryption.
func TestSopsInterop(t *testing.T) {
	plain := storetest.Decrypted(t, storetest.Case{New: func() sops.Store { return New(DefaultIndent) }, Encrypted: "testdata/sops.enc.json"}, "testdata/test.agekey")
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
