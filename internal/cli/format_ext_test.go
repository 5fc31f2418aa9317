package cli_test

import (
	"fmt"
	"os"
	"regexp"

	"github.com/lacre/lacre/internal/cli"
	"github.com/lacre/lacre/keys/age/agetest"
)

// The scripts' age plugin (age-plugin-lacretest, for lacre and the real
// sops alike) and sopsmask.
func init() {
	cli.AddTestCommand("age-plugin-"+agetest.Name, func() { os.Exit(agetest.PluginMain()) })
	cli.AddTestCommand("sopsmask", sopsMask)
}

var (
	maskEnc   = regexp.MustCompile(`ENC\[AES256_GCM,[^\]]*\]`)
	maskAge   = regexp.MustCompile(`(?s)-----BEGIN AGE ENCRYPTED FILE-----.*?-----END AGE ENCRYPTED FILE-----`)
	maskMtime = regexp.MustCompile(`(lastmodified"?\s*[:=]\s*)"?[0-9T:.Z+-]+"?`)
)

// sopsMask prints the encrypted file FILE with what differs between two
// encryptions of the same plaintext (encrypted values, wrapped data keys,
// lastmodified) replaced by placeholders, so that lacre's and sops's
// files can be compared byte for byte.
func sopsMask() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sopsmask FILE")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := maskEnc.ReplaceAll(data, []byte("ENC[...]"))
	out = maskAge.ReplaceAll(out, []byte("AGE"))
	out = maskMtime.ReplaceAll(out, []byte("${1}T"))
	os.Stdout.Write(out)
}
