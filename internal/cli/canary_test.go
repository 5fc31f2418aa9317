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
