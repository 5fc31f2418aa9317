package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lacre/lacre/internal/cli/clitest"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

// TestPublishVault publishes to a local Vault KV endpoint, versions 1 and
// 2, as sops does: the decrypted keys and values, one secret per file,
// named after it (relative to the directory with --recursive).
func TestPublishVault(t *testing.T) {
	srv := vaulttest.New("root-token")
	defer srv.Close()
	srv.MountKV("secret", 2)
	srv.MountKV("kv1", 1)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.txt")
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("key.txt", id.String()+"\n")
	write(".sops.yaml", fmt.Sprintf(`destination_rules:
  - path_regex: 'v1/'
    vault_path: team/
    vault_address: %s
    vault_kv_mount_name: kv1
    vault_kv_version: 1
  - path_regex: 's3/'
    s3_bucket: bucket
  - vault_path: apps
    vault_address: %s
`, srv.URL, srv.URL))
	env := clitest.Env(map[string]string{"SOPS_AGE_KEY_FILE": keyFile, "VAULT_TOKEN": "root-token", "HOME": dir}, nil)
	run := func(args ...string) (int, string, string) {
		return clitest.Run(env, lacre, append([]string{"--config", filepath.Join(dir, ".sops.yaml")}, args...)...)
	}
	encrypt := func(name, plain string) string {
		t.Helper()
		write(name+".plain", plain)
		code, out, errs := run("encrypt", "--age", id.Recipient().String(), "--input-type", "yaml", "--output-type", "yaml", filepath.Join(dir, name+".plain"))
		if code != 0 {
			t.Fatalf("encrypt: %d %s", code, errs)
		}
		write(name, out)
		return filepath.Join(dir, name)
	}
	app := encrypt("app.yaml", "user: admin\npassword: hunter2\nport: 5432\n")

	code, _, errs := run("publish", "-y", app)
	want := map[string]any{"user": "admin", "password": "hunter2", "port": float64(5432)}
	if got, n := srv.Secret("secret", "apps/app.yaml"); code != 0 || n != 1 || !reflect.DeepEqual(got, want) {
		t.Fatalf("publish (KV v2): exit %d %s; secret %v (%d versions)", code, errs, got, n)
	}
	// The same data again: no new version.
	if code, _, errs = run("publish", "-y", "--omit-extensions", app); code != 0 {
		t.Fatal(errs)
	}
	if _, n := srv.Secret("secret", "apps/app.yaml"); n != 1 {
		t.Errorf("unchanged data wrote version %d", n)
	}
	if got, _ := srv.Secret("secret", "apps/app"); !reflect.DeepEqual(got, want) {
		t.Errorf("--omit-extensions: %v", got)
	}

	// KV v1, a directory with --recursive: names relative to it.
	encrypt("v1/a.yaml", "a: 1\n")
	encrypt("v1/sub/b.yaml", "b: two\n")
	for _, f := range []string{"v1/a.yaml.plain", "v1/sub/b.yaml.plain"} {
		os.Remove(filepath.Join(dir, f))
	}
	if code, _, errs = run("publish", "-y", "--recursive", filepath.Join(dir, "v1")); code != 0 {
		t.Fatalf("publish --recursive: %d %s", code, errs)
	}
	if got, _ := srv.Secret("kv1", "team/sub/b.yaml"); !reflect.DeepEqual(got, map[string]any{"b": "two"}) {
		t.Errorf("KV v1 sub/b.yaml: %v", got)
	}
	if got, _ := srv.Secret("kv1", "team/a.yaml"); !reflect.DeepEqual(got, map[string]any{"a": float64(1)}) {
		t.Errorf("KV v1 a.yaml: %v", got)
	}

	// A directory without --recursive; S3 without lacre-cluster (this test
	// runs lacre alone); no answer.
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"publish", "-y", filepath.Join(dir, "v1")}, "is a directory: publish it with --recursive"},
		{[]string{"publish", "-y", encrypt("s3/c.yaml", "c: 1\n")}, "publishing to s3 needs lacre-cluster, which was not found"},
		{[]string{"publish", app}, "no answer: pass -y"},
	} {
		code, _, errs := run(tc.args...)
		if code != 1 || !strings.Contains(errs, tc.err) {
			t.Errorf("%v: exit %d, stderr lacks %q:\n%s", tc.args, code, tc.err, errs)
		}
	}
	env = clitest.Env(map[string]string{"SOPS_AGE_KEY_FILE": keyFile, "VAULT_TOKEN": "wrong", "HOME": dir}, nil)
	code, _, errs = run("publish", "-y", app)
	if code != 1 || !strings.Contains(errs, "permission denied") || strings.Contains(errs, "hunter2") {
		t.Errorf("wrong token: exit %d:\n%s", code, errs)
	}
}
