package pgp

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keystest"
)

type gpgKey struct {
	home, fp  string
	pub, priv []byte
	opts      GPGOptions
}

func needGPG(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gpg is required in CI")
		}
		t.Skip("gpg is not installed")
	}
}

// newGPGKey makes a passphrase-less key in a private GNUPGHOME.
func newGPGKey(t *testing.T, name string) gpgKey {
	t.Helper()
	needGPG(t)
	home, err := os.MkdirTemp("", "lacre-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	env := append(os.Environ(), "GNUPGHOME="+home)
	opts := GPGOptions{Env: env}
	run := func(args ...string) []byte {
		out, err := opts.run(context.Background(), nil, args...)
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return out
	}
	run("--batch", "--passphrase", "", "--quick-gen-key", name+" <"+name+"@lacre.invalid>", "default", "default", "never")
	out := run("--batch", "--with-colons", "--list-secret-keys")
	var fp string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "fpr:") && fp == "" {
			fp = strings.Split(l, ":")[9]
		}
	}
	if fp == "" {
		t.Fatal("no fingerprint")
	}
	return gpgKey{home: home, fp: fp, opts: opts,
		pub:  run("--batch", "--armor", "--export", fp),
		priv: run("--batch", "--armor", "--export-secret-keys", fp)}
}

func TestConformanceGPG(t *testing.T) {
	k := newGPGKey(t, "alice")
	other := newGPGKey(t, "bob")
	keystest.Run(t, keystest.Backend{
		Type: keys.TypePGP, Recipient: NewGPGRecipient(k.fp, k.opts), Identity: NewGPGIdentity(k.opts),
		WrongIdentity: NewGPGIdentity(other.opts), WrongIsIncorrect: true,
	})
}

func TestConformanceInMemory(t *testing.T) {
	k := newGPGKey(t, "carol")
	other := newGPGKey(t, "dave")
	r, err := NewArmoredRecipient(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	if r.Fingerprint() != k.fp {
		t.Fatalf("fingerprint %s, want %s", r.Fingerprint(), k.fp)
	}
	id, err := ParseArmoredIdentities(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := ParseArmoredIdentities(other.priv)
	keystest.Run(t, keystest.Backend{
		Type: keys.TypePGP, Recipient: r, Identity: id, WrongIdentity: wrong, WrongIsIncorrect: true,
		Secrets: []string{string(k.priv)},
	})
	for _, s := range []string{fmt.Sprint(id), fmt.Sprintf("%+v", id), keys.Describe(id)} {
		if strings.Contains(s, "PRIVATE KEY") {
			t.Fatalf("identity formatting leaks the key: %s", s)
		}
	}
}

// TestCrossDecrypt: gpg decrypts what go-crypto wrapped, and go-crypto (no
// gpg at all) decrypts what gpg wrapped.
func TestCrossDecrypt(t *testing.T) {
	k := newGPGKey(t, "erin")
	ctx := context.Background()
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	r, _ := NewArmoredRecipient(k.pub)
	s, err := r.Wrap(ctx, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewGPGIdentity(k.opts).Unwrap(ctx, s)
	if err != nil || !bytes.Equal(got, dataKey) {
		t.Fatalf("gpg unwrap of go-crypto stanza: %v", err)
	}
	s2, err := NewGPGRecipient(k.fp, k.opts).Wrap(ctx, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ParseArmoredIdentities(k.priv)
	t.Setenv("PATH", "")
	got, err = id.Unwrap(ctx, s2)
	if err != nil || !bytes.Equal(got, dataKey) {
		t.Fatalf("in-memory unwrap of gpg stanza without gpg on PATH: %v", err)
	}
}

// TestSopsInterop: a file sops encrypted with --pgp unwraps in memory.
func TestSopsInterop(t *testing.T) {
	k := newGPGKey(t, "frank")
	sops := keystest.Sops(t)
	f := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(f, []byte(`{"a":"b"}`), 0o600)
	cmd := exec.Command(sops, "encrypt", "--pgp", k.fp, f)
	cmd.Env = append(k.opts.Env, "SOPS_DISABLE_VERSION_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sops: %v\n%s", err, out)
	}
	i := bytes.Index(out, []byte("-----BEGIN PGP MESSAGE-----"))
	j := bytes.Index(out, []byte("-----END PGP MESSAGE-----"))
	enc := strings.ReplaceAll(string(out[i:j+len("-----END PGP MESSAGE-----")]), `\n`, "\n")
	id, _ := ParseArmoredIdentities(k.priv)
	key, err := id.Unwrap(context.Background(), &keys.Stanza{Type: keys.TypePGP, Fields: map[string]string{"fp": k.fp}, Enc: enc})
	if err != nil || len(key) != 32 {
		t.Fatalf("unwrap sops's pgp stanza: %v", err)
	}
}

func FuzzParseArmoredIdentities(f *testing.F) {
	f.Add([]byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxcASBA==\n-----END PGP PRIVATE KEY BLOCK-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseArmoredIdentities(b) })
}
