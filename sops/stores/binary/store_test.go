package binary

import (
	"testing"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/stores/storetest"
)

var testCase = storetest.Case{
	New:       func() sops.Store { return New(-1) },
	Encrypted: "testdata/sops.enc.bin",
	Plain:     "testdata/plain.bin",
}

// TestSopsBytes re-emits a file the real sops wrote, byte for byte.
func TestSopsBytes(t *testing.T) { storetest.SopsBytes(t, testCase) }

func FuzzLoadPlain(f *testing.F) { storetest.FuzzLoadPlain(f, testCase) }

func FuzzLoadEncrypted(f *testing.F) { storetest.FuzzLoadEncrypted(f, testCase) }
