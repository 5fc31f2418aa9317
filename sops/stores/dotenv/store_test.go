package dotenv

import (
	"testing"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/stores/storetest"
)

var testCase = storetest.Case{
	New:       func() sops.Store { return New() },
	Encrypted: "testdata/sops.enc.env",
	Plain:     "testdata/plain.env",
}

// TestSopsBytes re-emits a file the real sops wrote, byte for byte.
func TestSopsBytes(t *testing.T) { storetest.SopsBytes(t, testCase) }

func FuzzLoadPlain(f *testing.F) { storetest.FuzzLoadPlain(f, testCase) }

func FuzzLoadEncrypted(f *testing.F) { storetest.FuzzLoadEncrypted(f, testCase) }
