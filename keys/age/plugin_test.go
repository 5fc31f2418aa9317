package age

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/age/agetest"
	"github.com/lacre/lacre/keys/keystest"
)

// TestMain runs this test binary as the test plugin when it is invoked as
// age-plugin-lacretest (a link made by pluginOnPath).
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "age-plugin-"+agetest.Name {
		os.Exit(agetest.PluginMain())
	}
	os.Exit(m.Run())
}

// pluginOnPath puts age-plugin-lacretest (this test binary) first on PATH.
func pluginOnPath(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "age-plugin-"+agetest.Name)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

var withPlugins = Options{Plugins: true}

func pluginKey(t *testing.T) (*Identity, *Recipient, string) {
	t.Helper()
	rs, is, err := agetest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := withPlugins.ParseIdentities(strings.NewReader(is + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := withPlugins.ParseRecipient(rs)
	if err != nil {
		t.Fatal(err)
	}
	return ids[0].(*Identity), r, is
}

func TestConformancePlugin(t *testing.T) {
	pluginOnPath(t)
	id, r, secret := pluginKey(t)
	wrong, _, _ := pluginKey(t)
	if !strings.HasPrefix(r.String(), "age1lacretest1") || id.Plugin() != agetest.Name {
		t.Fatalf("recipient %q, plugin %q", r.String(), id.Plugin())
	}
	keystest.Run(t, keystest.Backend{Type: keys.TypeAge, Recipient: r, Identity: id, WrongIdentity: wrong, WrongIsIncorrect: true, Secrets: []string{secret}})
}

// One plugin identity in a keys.txt does not discard the others (sops
// parses every line), and a native key still decrypts when the plugin is
// not installed.
func TestPluginLineKeepsOtherKeys(t *testing.T) {
	_, _, pluginSecret := pluginKey(t)
	_, natR, natSecret := x25519(t)
	file := "# created: 2026-01-01\n" + pluginSecret + "\n# public key: x\n" + natSecret + "\n"
	ids, err := withPlugins.ParseIdentities(strings.NewReader(file))
	if err != nil || len(ids) != 2 {
		t.Fatalf("got %d identities, %v", len(ids), err)
	}
	dataKey := bytes.Repeat([]byte{7}, 32)
	s, err := natR.Wrap(context.Background(), dataKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir()) // no plugin installed
	if _, err := ids[0].Unwrap(context.Background(), s); err == nil || strings.Contains(err.Error(), pluginSecret) {
		t.Fatalf("plugin identity without its plugin: %v", err)
	}
	got, err := keys.UnwrapGroups(context.Background(), []keys.Group{{s}}, 0, ids, nil)
	if err != nil || !bytes.Equal(got, dataKey) {
		t.Fatalf("unwrap with a plugin line first: %v", err)
	}
	// Without Options.Plugins (the controllers), plugin lines are refused
	// with an error naming the line, not its content.
	if _, err := ParseIdentities(strings.NewReader(file)); err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), pluginSecret) {
		t.Fatalf("without plugins: %v", err)
	}
	if _, err := ParseRecipient("age1lacretest1qqqq"); err == nil {
		t.Fatal("a plugin recipient parsed without plugins")
	}
}

// The age CLI decrypts what lacre wraps to the plugin recipient, with the
// same plugin: the stanza is a standard age file.
func TestPluginInteropWithAgeCLI(t *testing.T) {
	if _, err := exec.LookPath("age"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("age is required in CI")
		}
		t.Skip("age is not installed")
	}
	pluginOnPath(t)
	_, r, secret := pluginKey(t)
	dataKey := bytes.Repeat([]byte{9}, 32)
	s, err := r.Wrap(context.Background(), dataKey)
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(idFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("age", "-d", "-i", idFile)
	cmd.Stdin = strings.NewReader(s.Enc)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Equal(out, dataKey) {
		t.Fatalf("age -d of the plugin stanza: %v %q", err, out)
	}
}
