package cluster

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/lacre/lacre/internal/cli/clitest"
)

// TestCanaryEveryCommand runs a canary value through every file command
// and the cluster-less operator commands (build, diff, check, create
// secret sops --export), successes and errors, and checks that it shows
// only where decryption output was asked for: never on stderr, never on
// stdout otherwise, and in no file written other than the decryption
// output (including the editor's temporary file and TMPDIR).
func TestCanaryEveryCommand(t *testing.T) {
	const canary = "CANARY-7e0b2f-every-command"
	start := time.Now()
	dir := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Chdir(dir)
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	third, _ := age.GenerateX25519Identity()
	rcp := id.Recipient().String()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Inputs that hold the canary in plaintext on purpose.
	allowed := map[string]bool{}
	input := func(name, body string) { write(name, body); allowed[name] = true }
	write("key.txt", id.String()+"\n")
	write("other.txt", other.String()+"\n")
	input("bad-key.txt", canary+"\n")
	write(".sops.yaml", "creation_rules:\n  - path_regex: .*\n    age: "+rcp+"\n")
	input("plain.yaml", "secret: "+canary+"\nnote_unencrypted: x\n")
	input("broken.yaml", "secret: ["+canary+"\n")
	input("inplace.yaml", "secret: "+canary+"\n")
	input("malformed.txt", "secret: ["+canary+"\n")
	input("new-content.txt", "secret: "+canary+"-new\n")
	input("repo/plain-secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\n  namespace: apps\nstringData:\n  password: "+canary+"\n")
	input("secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: apps\nstringData:\n  password: "+canary+"\n")
	// Editors: one adds a key, one fails, one writes invalid YAML, one
	// leaves the file as it is, one replaces it; all log the path given.
	editor := func(name, body string) string {
		write(name, "#!/bin/sh\necho \"$1\" >> "+filepath.Join(dir, "edited-paths")+"\n"+body+"\n")
		return filepath.Join(dir, name)
	}
	addKey := editor("ed-add.sh", `printf 'added: y\n' >> "$1"`)
	fail := editor("ed-fail.sh", "exit 3")
	bad := editor("ed-bad.sh", `cp `+filepath.Join(dir, "malformed.txt")+` "$1"`)
	same := editor("ed-same.sh", "true")
	replace := editor("ed-new.sh", `cp `+filepath.Join(dir, "new-content.txt")+` "$1"`)
	write("ks.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: repo\n")

	defaults := map[string]string{"HOME": dir, "XDG_CONFIG_HOME": dir, "KUBECONFIG": filepath.Join(dir, "no-kubeconfig")}
	run := func(env map[string]string, args ...string) (int, string, string) {
		return clitest.Run(clitest.Env(env, defaults), full, args...)
	}
	withKey := map[string]string{"SOPS_AGE_KEY_FILE": filepath.Join(dir, "key.txt")}
	code, enc, stderr := run(withKey, "encrypt", "--age", rcp, "plain.yaml")
	if code != 0 {
		t.Fatalf("encrypt: %s", stderr)
	}
	write("enc.yaml", enc)
	write("tampered.yaml", strings.Replace(enc, "note_unencrypted: x", "note_unencrypted: y", 1))
	code, encSecret, stderr := run(withKey, "encrypt", "--age", rcp, "--encrypted-regex", "^(data|stringData)$", "secret.yaml")
	if code != 0 {
		t.Fatalf("encrypt: %s", stderr)
	}
	write("repo/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - db.yaml\n")
	write("repo/db.yaml", encSecret)
	write("kdir/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - db.yaml\n")
	write("kdir/db.yaml", encSecret)
	write("kdir-tampered/db.yaml", strings.Replace(encSecret, "namespace: apps", "namespace: other", 1))
	for _, f := range []string{"rot.yaml", "upd.yaml", "grp.yaml", "set.yaml", "edit.yaml", "edit2.yaml"} {
		write(f, enc)
	}

	type step struct {
		args []string
		env  map[string]string
		// showsPlain: stdout may hold the canary (decryption output asked for).
		showsPlain bool
	}
	otherKey := map[string]string{"SOPS_AGE_KEY_FILE": filepath.Join(dir, "other.txt")}
	withEditor := func(e string) map[string]string {
		return map[string]string{"SOPS_AGE_KEY_FILE": filepath.Join(dir, "key.txt"), "EDITOR": e}
	}
	steps := []step{
		{args: []string{"encrypt", "--age", rcp, "plain.yaml"}},
		{args: []string{"encrypt", "-i", "--age", rcp, "inplace.yaml"}},
		{args: []string{"encrypt", "--age", rcp, "--output", "out.enc.yaml", "plain.yaml"}},
		{args: []string{"encrypt", "--age", rcp, "broken.yaml"}},
		{args: []string{"encrypt", "--age", rcp, "missing.yaml"}},
		{args: []string{"decrypt", "enc.yaml"}, env: withKey, showsPlain: true},
		{args: []string{"decrypt", "--extract", `["secret"]`, "enc.yaml"}, env: withKey, showsPlain: true},
		{args: []string{"decrypt", "--output", "dec.yaml", "enc.yaml"}, env: withKey},
		{args: []string{"decrypt", "enc.yaml"}, env: otherKey},
		{args: []string{"decrypt", "tampered.yaml"}, env: withKey},
		{args: []string{"decrypt", "broken.yaml"}, env: withKey},
		{args: []string{"decrypt", "missing.yaml"}, env: withKey},
		{args: []string{"edit", "edit.yaml"}, env: withEditor(addKey)},
		{args: []string{"edit", "edit.yaml"}, env: withEditor(fail)},
		{args: []string{"edit", "edit.yaml"}, env: withEditor(bad)},
		{args: []string{"edit", "edit.yaml"}, env: withEditor(same)},
		{args: []string{"edit", "edit2.yaml"}, env: withEditor(replace)},
		{args: []string{"edit", "created.yaml"}, env: withEditor(replace)},
		{args: []string{"edit", "edit.yaml"}, env: map[string]string{"SOPS_AGE_KEY_FILE": filepath.Join(dir, "other.txt"), "EDITOR": addKey}},
		{args: []string{"edit", "tampered.yaml"}, env: withEditor(addKey)},
		{args: []string{"set", "set.yaml", `["secret"]`, `"` + canary + `-set"`}, env: withKey},
		{args: []string{"set", "set.yaml", `["secret"]`, "not-json-" + canary}, env: withKey},
		{args: []string{"set", "tampered.yaml", `["secret"]`, `"x"`}, env: withKey},
		{args: []string{"unset", "set.yaml", `["note_unencrypted"]`}, env: withKey},
		{args: []string{"unset", "set.yaml", `["nope"]`}, env: withKey},
		{args: []string{"rotate", "rot.yaml"}, env: withKey},
		{args: []string{"rotate", "-i", "rot.yaml"}, env: withKey},
		{args: []string{"rotate", "-i", "--add-age", third.Recipient().String(), "rot.yaml"}, env: withKey},
		{args: []string{"rotate", "tampered.yaml"}, env: withKey},
		{args: []string{"rotate", "enc.yaml"}, env: otherKey},
		{args: []string{"updatekeys", "--yes", "upd.yaml"}, env: withKey},
		{args: []string{"updatekeys", "--check", "enc.yaml"}, env: withKey},
		{args: []string{"updatekeys", "--yes", "tampered.yaml"}, env: otherKey},
		{args: []string{"keys", "enc.yaml"}},
		{args: []string{"keys", "plain.yaml"}},
		{args: []string{"filestatus", "enc.yaml"}},
		{args: []string{"filestatus", "plain.yaml"}},
		{args: []string{"filestatus", "broken.yaml"}},
		{args: []string{"groups", "add", "--file", "grp.yaml", "--age", third.Recipient().String()}, env: withKey},
		{args: []string{"groups", "delete", "--file", "grp.yaml", "1"}, env: withKey},
		{args: []string{"groups", "add", "--file", "grp.yaml", "--age", third.Recipient().String()}, env: otherKey},
		{args: []string{"build", "kustomization", "apps", "--path", "kdir", "--decrypt"}, env: withKey},
		{args: []string{"build", "kustomization", "apps", "--path", "kdir", "--decrypt", "--kustomization-file", "ks.yaml"}, env: withKey},
		{args: []string{"build", "kustomization", "apps", "--path", "kdir", "--decrypt"}, env: otherKey},
		{args: []string{"build", "kustomization", "apps", "--path", "kdir-tampered", "--decrypt"}, env: withKey},
		{args: []string{"build", "kustomization", "apps", "--path", "repo", "--decrypt"}, env: withKey},
		{args: []string{"build", "kustomization", "apps", "--path", "kdir"}},
		{args: []string{"diff", "kustomization", "apps", "--path", "kdir", "--decrypt"}, env: withKey},
		{args: []string{"diff", "kustomization", "apps", "--path", "kdir-tampered", "--decrypt"}, env: withKey},
		{args: []string{"check", "secrets", "repo"}},
		{args: []string{"check", "secrets", "."}},
		{args: []string{"create", "secret", "sops", "sops-age", "--age-key-file", "key.txt", "--export"}},
		{args: []string{"create", "secret", "sops", "sops-age", "--age-key-file", "bad-key.txt", "--export"}},
		{args: []string{"create", "secret", "sops", "sops-age", "--age-key-file", "plain.yaml", "--export"}},
		{args: []string{"create", "secret", "sops", "sops-age", "--age-key-file", "key.txt"}},
	}
	for _, s := range steps {
		code, stdout, stderr := run(s.env, s.args...)
		t.Logf("%v: exit %d", s.args, code)
		if strings.Contains(stderr, canary) {
			t.Errorf("%v: stderr leaks the canary:\n%s", s.args, stderr)
		}
		if strings.Contains(stdout, canary) && !(s.showsPlain && code == 0) {
			t.Errorf("%v (exit %d): stdout shows the canary:\n%s", s.args, code, stdout)
		}
	}
	allowed["dec.yaml"] = true

	// The editor was run on temporary files that are gone.
	paths, _ := os.ReadFile(filepath.Join(dir, "edited-paths"))
	if len(paths) == 0 {
		t.Error("the editor never ran")
	}
	for _, p := range strings.Fields(string(paths)) {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the plaintext the editor saw is still at %s", p)
		}
	}
	// No written file holds the canary, but the inputs and the decryption
	// output; nothing in TMPDIR or /dev/shm.
	scan := func(root string, rel bool) {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			name := p
			if rel {
				name, _ = filepath.Rel(root, p)
			}
			if allowed[name] || strings.HasPrefix(name, "ed-") {
				return nil
			}
			info, err := d.Info()
			if err != nil || info.ModTime().Before(start) || !info.Mode().IsRegular() {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(canary)) {
				t.Errorf("the canary is in %s", p)
			}
			return nil
		})
	}
	scan(dir, true)
	scan(tmp, false)
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		left, _ := filepath.Glob("/dev/shm/lacre-edit-*")
		for _, l := range left {
			scan(l, false)
		}
	}
	// The encryptions really happened (the test is not vacuous).
	for _, f := range []string{"inplace.yaml", "out.enc.yaml", "edit.yaml", "edit2.yaml", "created.yaml", "set.yaml", "rot.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(data, []byte("ENC[")) {
			t.Errorf("%s was not written encrypted: %v", f, err)
		}
	}
	if data, _ := os.ReadFile("dec.yaml"); !bytes.Contains(data, []byte(canary)) {
		t.Error("decrypt --output did not write the plaintext")
	}
}
