package dotenv

import (
	"bytes"
	"os"
	"testing"
)

// TestSopsBytes re-emits a file the real sops 3.13.3 wrote, byte for byte.
func TestSopsBytes(t *testing.T) {
	enc, err := os.ReadFile("testdata/sops.enc.env")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestStore()
	tree, err := s.LoadEncryptedFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Metadata.KeyGroups) != 1 || tree.Metadata.Version != "3.13.3" {
		t.Fatalf("metadata: %+v", tree.Metadata)
	}
	out, err := s.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, enc) {
		t.Fatalf("re-emitted file differs:\n%s\n--- sops wrote:\n%s", out, enc)
	}
}

func FuzzLoadPlain(f *testing.F) {
	for _, p := range []string{"testdata/plain.env"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := newTestStore()
		b, err := s.LoadPlainFile(in)
		if err != nil {
			return
		}
		out, err := s.EmitPlainFile(b)
		if err != nil {
			return
		}
		b2, err := s.LoadPlainFile(out)
		if err != nil {
			t.Fatalf("emitted file does not load: %v", err)
		}
		out2, err := s.EmitPlainFile(b2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("load/emit not stable:\n%q\n%q", out, out2)
		}
	})
}

func FuzzLoadEncrypted(f *testing.F) {
	if b, err := os.ReadFile("testdata/sops.enc.env"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) { _, _ = newTestStore().LoadEncryptedFile(in) })
}
