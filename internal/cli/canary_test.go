package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/lacre/lacre/internal/cli/clitest"
)

// TestCanaryNeverLeaks runs the CLI's error paths in-process on files that
// hold a canary value, and checks that no output on stderr (and no stdout,
// except where decryption was asked for and succeeded) contains it.
func TestCanaryNeverLeaks(t *testing.T) {
	const canary = "CANARY-d41d8cd98f-value"
	dir := t.TempDir()
	t.Chdir(dir)
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	os.WriteFile("key.txt", []byte(id.String()+"\n"), 0o600)
	os.WriteFile("other.txt", []byte(other.String()+"\n"), 0o600)
	os.WriteFile("bad-key.txt", []byte(canary+"\n"), 0o600)
	os.WriteFile("plain.yaml", []byte("secret: "+canary+"\nnote_unencrypted: x\n"), 0o600)
	os.WriteFile("plain.env", []byte("SECRET="+canary+"\n"), 0o600)
	os.WriteFile("broken.yaml", []byte("secret: ["+canary+"\n"), 0o600)
	os.WriteFile("dup.json", []byte(`{"a": "`+canary+`", "a": "`+canary+`"}`), 0o600)
	os.WriteFile("bad.ini", []byte("[s]\nk = v\n"+canary+"\n"), 0o600)  // no delimiter: the INI parser quotes the line
	os.WriteFile("badtag.yaml", []byte("k: !!int "+canary+"\n"), 0o600) // yaml quotes the value
	// Invalid UTF-8 after the canary, in each store (issue 17 item 5).
	invalid := []struct{ name, data string }{
		{"u.yaml", "k: " + canary + "\xff\xfe\n"}, {"u.json", `{"k": "` + canary + "\xff\xfe" + `"}`},
		{"u.env", "K=" + canary + "\xff\xfe\n"}, {"u.ini", "[s]\nk = " + canary + "\xff\xfe\n"},
		{"u.bin", canary + "\xff\xfe"}, {"u2.ini", "[s]\n" + canary + "\xff\xfe\n"},
	}
	for _, f := range invalid {
		os.WriteFile(f.name, []byte(f.data), 0o600)
	}

	home := map[string]string{"HOME": dir, "XDG_CONFIG_HOME": dir}
	run := func(env map[string]string, args ...string) (int, string, string) {
		return clitest.Run(clitest.Env(env, home), lacre, args...)
	}
	withKey := map[string]string{"SOPS_AGE_KEY_FILE": filepath.Join(dir, "key.txt")}
	code, enc, _ := run(nil, "encrypt", "--age", id.Recipient().String(), "plain.yaml")
	if code != 0 {
		t.Fatal("encrypt failed")
	}
	os.WriteFile("enc.yaml", []byte(enc), 0o600)
	os.WriteFile("tampered.yaml", []byte(strings.Replace(enc, "note_unencrypted: x", "note_unencrypted: y", 1)), 0o600)
	os.WriteFile("renamed.yaml", []byte(strings.Replace(enc, "secret:", "secreT:", 1)), 0o600)
	os.WriteFile("plainval.yaml", []byte(strings.Replace(enc, "secret: ENC[", "secret: "+canary+" ENC[", 1)), 0o600)

	cases := [][]string{
		{"decrypt", "enc.yaml"},      // no key
		{"decrypt", "tampered.yaml"}, // MAC
		{"decrypt", "renamed.yaml"},  // value auth
		{"decrypt", "plainval.yaml"}, // not encrypted
		{"decrypt", "plain.yaml"},    // no metadata
		{"decrypt", "broken.yaml"},   // parse
		{"encrypt", "--age", id.Recipient().String(), "broken.yaml"},
		{"encrypt", "--age", id.Recipient().String(), "dup.json"},
		{"encrypt", "--age", id.Recipient().String(), "enc.yaml"},
		{"encrypt", "plain.yaml"},                  // no keys
		{"encrypt", "--age", canary, "plain.yaml"}, // bad recipient (public input, quoted)
		{"decrypt", "--extract", `["nope"]`, "enc.yaml"},
		{"set", "enc.yaml", `["secret"]`, "not-json-" + canary},
		{"unset", "enc.yaml", `["nope"]`},
		{"rotate", "tampered.yaml"},
		{"updatekeys", "--check", "enc.yaml"},
		{"keys", "plain.yaml"},
	}
	for _, f := range append(invalid, struct{ name, data string }{"bad.ini", ""}, struct{ name, data string }{"badtag.yaml", ""}) {
		cases = append(cases, []string{"encrypt", "--age", id.Recipient().String(), f.name})
	}
	envs := []map[string]string{
		nil, withKey,
		{"SOPS_AGE_KEY_FILE": filepath.Join(dir, "other.txt")},
		{"SOPS_AGE_KEY_FILE": filepath.Join(dir, "bad-key.txt")},
		{"SOPS_AGE_KEY": canary},
	}
	for _, env := range envs {
		for _, args := range cases {
			code, stdout, stderr := run(env, args...)
			if strings.Contains(stderr, canary) && !(len(args) > 2 && args[1] == "--age" && args[2] == canary) {
				t.Errorf("%v (env %v): stderr leaks the canary:\n%s", args, env, stderr)
			}
			if code != 0 && strings.Contains(stdout, canary) {
				t.Errorf("%v: failed but printed the canary on stdout", args)
			}
		}
	}
}

// TestCanaryNewErrorPaths covers the error paths issue 17 added or
// reached, with a canary in the file: invalid UTF-8 in each store (yaml,
// json, dotenv, ini, binary) written by the editor in edit, given to set,
// and decrypted into each output store; a file over the input limit; a
// file refused by its .sops.yaml rule (set, edit, rotate, updatekeys,
// groups add/delete); an --output that cannot be written.
func TestCanaryNewErrorPaths(t *testing.T) {
	const canary = "CANARY-5f0c2a7e31-value"
	dir := t.TempDir()
	t.Chdir(dir)
	id, _ := age.GenerateX25519Identity()
	planted, _ := age.GenerateX25519Identity()
	os.WriteFile("key.txt", []byte(id.String()+"\n"), 0o600)
	home := map[string]string{"HOME": dir, "XDG_CONFIG_HOME": dir, "SOPS_AGE_KEY_FILE": filepath.Join(dir, "key.txt")}
	run := func(env map[string]string, args ...string) (int, string, string) {
		return clitest.Run(clitest.Env(env, home), lacre, args...)
	}
	var cases []struct {
		env  map[string]string
		args []string
	}
	add := func(env map[string]string, args ...string) {
		cases = append(cases, struct {
			env  map[string]string
			args []string
		}{env, args})
	}
	bad := canary + "\xff\xfe"
	stores := map[string]struct{ plain, edited string }{
		"yaml": {"k: v\n", "k: " + bad + "\n"}, "json": {`{"k": "v"}`, `{"k": "` + bad + `"}`},
		"env": {"K=v\n", "K=" + bad + "\n"}, "ini": {"[s]\nk = v\n", "[s]\nk = " + bad + "\n"},
		"bin": {"v", bad},
	}
	for ext, s := range stores {
		os.WriteFile("p."+ext, []byte(s.plain), 0o600)
		code, enc, stderr := run(nil, "encrypt", "--age", id.Recipient().String(), "p."+ext)
		if code != 0 {
			t.Fatalf("encrypt p.%s: %s", ext, stderr)
		}
		os.WriteFile("e."+ext, []byte(enc), 0o600)
		os.WriteFile("edited."+ext, []byte(s.edited), 0o600)
		// The editor writes invalid UTF-8 with the canary.
		add(map[string]string{"EDITOR": "cp " + filepath.Join(dir, "edited."+ext)}, "edit", "e."+ext)
		add(nil, "set", "e."+ext, `["k"]`, `"`+bad+`"`)
		// Invalid UTF-8 encrypted (where the store takes it), decrypted
		// into each output store.
		if code, enc, _ := run(nil, "encrypt", "--age", id.Recipient().String(), "edited."+ext); code == 0 {
			os.WriteFile("u."+ext, []byte(enc), 0o600)
			for _, out := range []string{"yaml", "json", "dotenv", "ini", "binary"} {
				add(nil, "decrypt", "--output-type", out, "u."+ext)
			}
		}
	}
	// Over the input limit (sparse: nothing is held).
	f, _ := os.Create("big.yaml")
	f.WriteString("k: " + canary + "\n")
	f.Truncate(maxInputSize + 1)
	f.Close()
	for _, args := range [][]string{{"encrypt", "--age", id.Recipient().String(), "big.yaml"}, {"decrypt", "big.yaml"}, {"set", "big.yaml", `["k"]`, `"x"`}} {
		add(nil, args...)
	}
	// A file whose recipients and selection differ from its rule.
	os.Mkdir("r", 0o700)
	os.WriteFile("r/.sops.yaml", []byte("creation_rules:\n  - encrypted_regex: ^k$\n    age: "+id.Recipient().String()+"\n"), 0o600)
	os.WriteFile("r/p.yaml", []byte("k: "+canary+"\nother: x\n"), 0o600)
	code, enc, stderr := run(nil, "encrypt", "--age", id.Recipient().String()+","+planted.Recipient().String(), "r/p.yaml")
	if code != 0 {
		t.Fatalf("encrypt r/p.yaml: %s", stderr)
	}
	os.WriteFile("r/e.yaml", []byte(enc), 0o600)
	for _, args := range [][]string{{"set", "r/e.yaml", `["k"]`, `"` + canary + `"`}, {"edit", "r/e.yaml"}, {"rotate", "-i", "r/e.yaml"},
		{"updatekeys", "-y", "r/e.yaml"}, {"groups", "add", "--file", "r/e.yaml", "--age", id.Recipient().String()}, {"groups", "delete", "--file", "r/e.yaml", "0"}} {
		add(map[string]string{"EDITOR": "true"}, append([]string{"--config", "r/.sops.yaml"}, args...)...)
	}
	// An --output that cannot be written.
	os.Mkdir("dir", 0o700)
	add(nil, "decrypt", "--output", "dir", "e.yaml")
	add(nil, "decrypt", "--output", "nodir/x.yaml", "e.yaml")

	for _, c := range cases {
		code, stdout, stderr := run(c.env, c.args...)
		if strings.Contains(stderr, canary) {
			t.Errorf("%q: stderr leaks the canary:\n%s", c.args, stderr)
		}
		if code != 0 && strings.Contains(stdout, canary) {
			t.Errorf("%q: failed but printed the canary on stdout", c.args)
		}
		t.Logf("%q: exit %d: %s", c.args, code, strings.TrimSpace(stderr))
	}
}
