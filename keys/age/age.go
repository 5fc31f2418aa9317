// Package age implements age master keys (filippo.io/age): X25519 and
// post-quantum hybrid recipients, and SSH ed25519/RSA keys. The data key is
// stored as an armored age file, as sops does.
package age

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"filippo.io/age/plugin"
	"golang.org/x/crypto/ssh"

	"github.com/lacre/lacre/keys"
)

// maxIdentitiesSize bounds an identities file.
const maxIdentitiesSize = 16 << 20

// Recipient wraps data keys for one age recipient.
type Recipient struct {
	r   age.Recipient
	str string
}

var (
	_ keys.Recipient = (*Recipient)(nil)
	_ keys.Identity  = (*Identity)(nil)
	_ keys.Typed     = (*Identity)(nil)
)

// Options say how recipients and identities are parsed. The zero value
// allows no plugin.
type Options struct {
	// Plugins allows age plugins, as sops does: age1<name>1... recipients
	// and AGE-PLUGIN-<NAME>-1... identities run the age-plugin-<name>
	// binary found on PATH when they wrap or unwrap a data key.
	Plugins bool
	// UI is how a plugin talks to the user (nil: it cannot).
	UI *plugin.ClientUI
}

// ParseRecipient parses an age recipient: age1... (X25519), age1pq1...
// (post-quantum hybrid), or an ssh-ed25519 / ssh-rsa public key. Plugin
// recipients need Options.Plugins.
func ParseRecipient(s string) (*Recipient, error) { return Options{}.ParseRecipient(s) }

// isPluginRecipient reports whether s is age1<name>1...: bech32 data has
// no '1', so a second one ends a plugin name (sops's test).
func isPluginRecipient(s string) bool {
	return strings.HasPrefix(s, "age1") && !strings.HasPrefix(s, "age1pq1") && strings.Count(s, "1") > 1
}

// ParseRecipient parses an age recipient, and with o.Plugins a plugin
// recipient age1<name>1....
func (o Options) ParseRecipient(s string) (*Recipient, error) {
	s = strings.TrimSpace(s)
	var r age.Recipient
	var err error
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		r, err = age.ParseHybridRecipient(s)
	case isPluginRecipient(s):
		if !o.Plugins {
			return nil, fmt.Errorf("age plugin recipient %q: plugins are not enabled here", s)
		}
		r, err = plugin.NewRecipient(s, o.ui())
	case strings.HasPrefix(s, "age1"):
		r, err = age.ParseX25519Recipient(s)
	case strings.HasPrefix(s, "ssh-"):
		r, err = agessh.ParseRecipient(s)
	default:
		return nil, fmt.Errorf("unknown age recipient %q: expected age1..., age1pq1..., age1<plugin>1... or an ssh public key", s)
	}
	if err != nil {
		return nil, fmt.Errorf("malformed age recipient %q: %v", s, err)
	}
	return &Recipient{r: r, str: s}, nil
}

func (o Options) ui() *plugin.ClientUI {
	if o.UI != nil {
		return o.UI
	}
	return &plugin.ClientUI{}
}

// RecipientFromStanza returns the recipient of an existing age stanza.
func RecipientFromStanza(s *keys.Stanza) (keys.Recipient, error) {
	return Options{}.RecipientFromStanza(s)
}

// RecipientFromStanza returns the recipient of an existing age stanza.
func (o Options) RecipientFromStanza(s *keys.Stanza) (keys.Recipient, error) {
	if s.Type != keys.TypeAge {
		return nil, fmt.Errorf("not an age stanza: %q", s.Type)
	}
	return o.ParseRecipient(s.Field("recipient"))
}

// String returns the public recipient.
func (r *Recipient) String() string { return r.str }

// Describe implements keys.Describer.
func (r *Recipient) Describe() string { return "age recipient " + r.str }

// StanzaType implements keys.Typed.
func (r *Recipient) StanzaType() string { return keys.TypeAge }

// Wrap encrypts the data key to the recipient as an armored age file.
func (r *Recipient) Wrap(_ context.Context, dataKey []byte) (*keys.Stanza, error) {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r.r)
	if err != nil {
		return nil, fmt.Errorf("age: %v", err)
	}
	if err := keys.WriteAndClose(dataKey, w, aw); err != nil {
		return nil, err
	}
	return &keys.Stanza{Type: keys.TypeAge, Fields: map[string]string{"recipient": r.str}, Enc: buf.String()}, nil
}

// Identity unwraps age stanzas. It has no String method: its secret is never
// printed; Describe gives the public recipient.
type Identity struct {
	id     age.Identity
	public string
	// plugin is the plugin's name, for a plugin identity (public is then
	// empty: the identity string is secret).
	plugin string
	// canonical says public is the exact recipient string sops records, so
	// stanzas for other recipients can be skipped without trying.
	canonical bool
}

// Describe implements keys.Describer with the public recipient.
func (i *Identity) Describe() string {
	if i.plugin != "" {
		return "age plugin identity (age-plugin-" + i.plugin + ")"
	}
	return "age identity " + i.public
}

// Plugin returns the plugin's name for a plugin identity, else "".
func (i *Identity) Plugin() string { return i.plugin }

// Recipient returns the public recipient string.
func (i *Identity) Recipient() string { return i.public }

// StanzaType implements keys.Typed.
func (i *Identity) StanzaType() string { return keys.TypeAge }

// Unwrap decrypts an age stanza.
func (i *Identity) Unwrap(_ context.Context, s *keys.Stanza) ([]byte, error) {
	if s.Type != keys.TypeAge {
		return nil, keys.ErrIncorrectIdentity
	}
	if rcp := s.Field("recipient"); i.canonical && rcp != "" && strings.HasPrefix(rcp, "age1") && rcp != i.public {
		return nil, keys.ErrIncorrectIdentity
	}
	var r io.Reader = strings.NewReader(s.Enc)
	if strings.HasPrefix(strings.TrimSpace(s.Enc), armor.Header) {
		r = armor.NewReader(strings.NewReader(strings.TrimSpace(s.Enc) + "\n"))
	}
	d, err := age.Decrypt(r, i.id)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, keys.ErrIncorrectIdentity
		}
		if i.plugin != "" {
			return nil, fmt.Errorf("age plugin %q: %v", i.plugin, err)
		}
		return nil, fmt.Errorf("malformed or tampered age stanza: %v", err)
	}
	key, err := io.ReadAll(io.LimitReader(d, 1024))
	if err != nil {
		return nil, fmt.Errorf("malformed or tampered age stanza: %v", err)
	}
	return key, nil
}

// ParseIdentities reads identities in the age keys.txt format: one per line,
// '#' comments and blank lines skipped. X25519 and hybrid post-quantum
// identities are supported; plugin identities are refused with a clear error.
// Errors name the line, never its content.
func ParseIdentities(r io.Reader) ([]keys.Identity, error) { return Options{}.ParseIdentities(r) }

// ParseIdentities is ParseIdentities, with plugin identities
// (AGE-PLUGIN-...) when o.Plugins.
func (o Options) ParseIdentities(r io.Reader) ([]keys.Identity, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxIdentitiesSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxIdentitiesSize {
		return nil, errors.New("identities file is too large")
	}
	var out []keys.Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxIdentitiesSize)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := o.parseIdentity(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, id)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no age identities found")
	}
	return out, nil
}

// ParseIdentity parses one AGE-SECRET-KEY-1... or AGE-SECRET-KEY-PQ-1...
// identity.
func ParseIdentity(s string) (*Identity, error) { return Options{}.parseIdentity(strings.TrimSpace(s)) }

func (o Options) parseIdentity(line string) (*Identity, error) {
	switch {
	case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
		id, err := age.ParseHybridIdentity(line)
		if err != nil {
			return nil, errors.New("malformed post-quantum age identity")
		}
		return &Identity{id: id, public: id.Recipient().String(), canonical: true}, nil
	case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, errors.New("malformed age identity")
		}
		return &Identity{id: id, public: id.Recipient().String(), canonical: true}, nil
	case strings.HasPrefix(line, "AGE-PLUGIN-"):
		if !o.Plugins {
			return nil, errors.New("age plugin identities are not supported here")
		}
		id, err := plugin.NewIdentity(line, o.ui())
		if err != nil {
			return nil, errors.New("malformed age plugin identity")
		}
		return &Identity{id: id, plugin: id.Name()}, nil
	}
	return nil, errors.New("not an age identity (expected AGE-SECRET-KEY-1...)")
}

// ParseSSHIdentity parses an unencrypted OpenSSH ed25519 or RSA private key.
func ParseSSHIdentity(pemBytes []byte) (*Identity, error) {
	k, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			return nil, errors.New("the ssh key is passphrase-protected, which is not supported here")
		}
		return nil, errors.New("malformed ssh private key")
	}
	switch k := k.(type) {
	case *ed25519.PrivateKey:
		id, err := agessh.NewEd25519Identity(*k)
		if err != nil {
			return nil, err
		}
		pub, _ := ssh.NewPublicKey(k.Public())
		return &Identity{id: id, public: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))}, nil
	case ed25519.PrivateKey:
		id, err := agessh.NewEd25519Identity(k)
		if err != nil {
			return nil, err
		}
		pub, _ := ssh.NewPublicKey(k.Public())
		return &Identity{id: id, public: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))}, nil
	case *rsa.PrivateKey:
		id, err := agessh.NewRSAIdentity(k)
		if err != nil {
			return nil, err
		}
		pub, _ := ssh.NewPublicKey(&k.PublicKey)
		return &Identity{id: id, public: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))}, nil
	}
	return nil, fmt.Errorf("unsupported ssh key type %T", k)
}

// DefaultKeysFile returns sops's default identities file under a user
// configuration directory: <dir>/sops/age/keys.txt.
func DefaultKeysFile(userConfigDir string) string {
	return filepath.Join(userConfigDir, "sops", "age", "keys.txt")
}
