// Package agetest is a small age plugin for tests: age-plugin-lacretest,
// built on filippo.io/age/plugin. Its recipients (age1lacretest1...) and
// identities (AGE-PLUGIN-LACRETEST-1...) carry an X25519 key pair; it
// writes "lacretest" stanzas, so only the plugin can unwrap them. Tests
// make a binary named age-plugin-lacretest on PATH run PluginMain.
package agetest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
	"filippo.io/age/plugin"
)

// Name is the plugin's name: the binary is age-plugin-lacretest.
const Name = "lacretest"

// stanzaType is the type of the plugin's stanzas.
const stanzaType = "lacretest"

// NewKey returns a new plugin recipient and identity.
func NewKey() (recipient, identity string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", "", err
	}
	return plugin.EncodeRecipient(Name, []byte(id.Recipient().String())),
		plugin.EncodeIdentity(Name, []byte(id.String())), nil
}

// PluginMain runs the plugin with os.Args, as age-plugin-lacretest, and
// returns its exit code. "age-plugin-lacretest keygen" prints a new key in
// the keys.txt format, with a "# public key:" line.
func PluginMain() int {
	if len(os.Args) == 2 && os.Args[1] == "keygen" {
		return keygen(os.Stdout)
	}
	p, err := plugin.New(Name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p.HandleRecipient(func(data []byte) (age.Recipient, error) {
		r, err := age.ParseX25519Recipient(string(data))
		if err != nil {
			return nil, errors.New("malformed lacretest recipient")
		}
		return recipient{r}, nil
	})
	p.HandleIdentity(func(data []byte) (age.Identity, error) {
		id, err := age.ParseX25519Identity(string(data))
		if err != nil {
			return nil, errors.New("malformed lacretest identity")
		}
		return identity{id}, nil
	})
	fs := flag.NewFlagSet("age-plugin-"+Name, flag.ContinueOnError)
	p.RegisterFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	return p.Main()
}

func keygen(w io.Writer) int {
	r, id, err := NewKey()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(w, "# public key: %s\n%s\n", r, id)
	return 0
}

type recipient struct{ r *age.X25519Recipient }

func (r recipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	ss, err := r.r.Wrap(fileKey)
	if err != nil {
		return nil, err
	}
	for _, s := range ss {
		s.Type = stanzaType
	}
	return ss, nil
}

type identity struct{ id *age.X25519Identity }

func (i identity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != stanzaType {
			continue
		}
		c := *s
		c.Type = "X25519"
		k, err := i.id.Unwrap([]*age.Stanza{&c})
		if errors.Is(err, age.ErrIncorrectIdentity) {
			continue
		}
		return k, err
	}
	return nil, age.ErrIncorrectIdentity
}
