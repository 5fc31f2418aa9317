package keysource

import (
	"io"
	"strings"
	"testing"

	"filippo.io/age"

	agekeys "github.com/lacre/lacre/keys/age"
)

// SOPS_AGE_KEY="$(cat keys.txt)": comment lines are skipped, every word
// of the other lines is an identity, as sops reads it.
func TestAgeKeyWords(t *testing.T) {
	home := t.TempDir() // no ~/.ssh keys, no keys.txt
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", home)
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	v := "# created: 2026-01-01T00:00:00Z\n# public key: " + a.Recipient().String() + "\n" + a.String() + "\n\n  " + b.String() + " " + a.String() + "\n"
	got := string(ageKeyWords(v))
	want := a.String() + "\n" + b.String() + "\n" + a.String() + "\n"
	if got != want {
		t.Fatalf("got %q", got)
	}
	src := New(func(k string) string {
		if k == "SOPS_AGE_KEY" {
			return v
		}
		return ""
	}, io.Discard, nil)
	ids, errs := src.loadAgeIdentities()
	if len(errs) != 0 || len(ids) != 3 {
		t.Fatalf("%d identities, %v", len(ids), errs)
	}
}

// Plugin identities go after the native ones, as age orders them.
func TestPluginsLast(t *testing.T) {
	nat, _ := age.GenerateX25519Identity()
	in := "AGE-PLUGIN-FOO-1QYPQX789M99\n" + nat.String() + "\n"
	ids, err := agekeys.Options{Plugins: true}.ParseIdentities(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := pluginsLast(ids)
	if got[0].(*agekeys.Identity).Plugin() != "" || got[1].(*agekeys.Identity).Plugin() != "foo" {
		t.Fatal("plugin identity not last")
	}
	c := &cmdIdentity{env: "SOPS_AGE_KEY_CMD", cmd: "echo secret-command"}
	if strings.Contains(c.Describe(), "secret-command") {
		t.Fatal("the command is described")
	}
}
