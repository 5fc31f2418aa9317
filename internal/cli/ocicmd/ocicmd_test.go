package ocicmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/ociartifact"
	"github.com/lacre/lacre/internal/ociartifact/ocitest"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs the artifact commands in-process with env as the environment
// (HOME a fresh directory unless env sets it).
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if env["HOME"] == "" {
		env["HOME"] = t.TempDir()
	}
	var out, errb bytes.Buffer
	a := &cliapp.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	ext := func(a *cliapp.App, root *cobra.Command) {
		root.AddCommand(Commands(a)...)
		root.AddCommand(group("build", "build", BuildArtifactCommand(a)), group("diff", "diff", DiffArtifactCommand(a)))
	}
	code := a.Run(context.Background(), args, ext)
	return result{code, out.String(), errb.String()}
}

const encryptedSecret = `apiVersion: v1
kind: Secret
metadata:
    name: db
stringData:
    password: ENC[AES256_GCM,data:cGFzcw==,iv:aXY=,tag:dGFn,type:str]
sops:
    mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
    version: 3.13.3
`

const plainSecret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: CANARY-plain-ocicmd\n"

// writeDir writes files below a new directory.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sourceFiles() map[string]string {
	return map[string]string{
		"kustomization.yaml": "resources:\n  - app.yaml\n  - secret.yaml\n",
		"app.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n",
		"secret.yaml":        encryptedSecret,
		"nested/deep.yaml":   "a: b\n",
		".git/config":        "[core]\n",
	}
}

func pushArgs(url, dir string, extra ...string) []string {
	return append([]string{"push", "artifact", url, "--path=" + dir, "--source=https://example.com/org/repo.git",
		"--revision=main@sha1:0123456789abcdef0123456789abcdef01234567"}, extra...)
}

// TestPushPullRoundTrip: push, then pull gives the files byte for byte,
// and build artifact gives the very layer that was pushed.
func TestPushPullRoundTrip(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	src := sourceFiles()
	dir := writeDir(t, src)
	url := "oci://" + reg.Host + "/org/app:v1.0.0"
	r := run(t, nil, pushArgs(url, dir, "--output=json", "--require-encrypted-secrets", "--reproducible")...)
	if r.code != 0 {
		t.Fatalf("push: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var info pushInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("push --output json: %v\n%s", err, r.stdout)
	}
	if info.Tag != "v1.0.0" || info.Repository != reg.Host+"/org/app" || !strings.HasPrefix(info.Digest, "sha256:") ||
		info.URL != "oci://"+reg.Host+"/org/app@"+info.Digest {
		t.Errorf("push info %+v", info)
	}

	out := t.TempDir()
	r = run(t, nil, "pull", "artifact", url, "--output", out)
	if r.code != 0 {
		t.Fatalf("pull: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"► pulling artifact from " + reg.Host + "/org/app:v1.0.0", "✔ source https://example.com/org/repo.git",
		"✔ revision main@sha1:0123456789abcdef0123456789abcdef01234567", "✔ digest " + reg.Host + "/org/app@" + info.Digest,
		"✔ artifact content extracted to " + out} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("pull output lacks %q:\n%s", want, r.stderr)
		}
	}
	for n, data := range src {
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(n)))
		if n == ".git/config" {
			if err == nil {
				t.Errorf("%s was pushed (--ignore-paths defaults)", n)
			}
			continue
		}
		if err != nil || string(got) != data {
			t.Errorf("%s: pulled %q (%v), want %q", n, got, err, data)
		}
	}

	tgz := filepath.Join(t.TempDir(), "artifact.tgz")
	r = run(t, nil, "build", "artifact", "--path", dir, "--output", tgz)
	if r.code != 0 || !strings.Contains(r.stderr, "✔ artifact created at "+tgz) {
		t.Fatalf("build artifact: exit %d\n%s", r.code, r.stderr)
	}
	built, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ociartifact.New(ociartifact.Options{}).Pull(context.Background(), mustRef(t, url))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, p.LayerData) {
		t.Error("build artifact's tarball differs from the pushed layer")
	}
	if p.Created != "1970-01-01T00:00:00Z" {
		t.Errorf("--reproducible: created %q", p.Created)
	}
}

func mustRef(t *testing.T, u string) name.Reference {
	t.Helper()
	ref, err := ociartifact.ParseArtifactURL(u, false)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestPushRefusesPlainSecret: --require-encrypted-secrets refuses a plain
// Secret with check secrets' rule (a kind: List and a .txt name too), and
// nothing is pushed.
func TestPushRefusesPlainSecret(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	url := "oci://" + reg.Host + "/org/app:v1"
	list := "apiVersion: v1\nkind: List\nitems:\n  - " + strings.ReplaceAll(plainSecret, "\n", "\n    ") + "\n"
	dir := writeDir(t, map[string]string{"ok.yaml": encryptedSecret, "plain.yaml": plainSecret, "sub/list.txt": list})
	r := run(t, nil, pushArgs(url, dir, "--require-encrypted-secrets")...)
	want := `--require-encrypted-secrets: not pushed: Kubernetes Secret is not SOPS-encrypted in "plain.yaml", "sub/list.txt"`
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("push of a plain Secret: exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "CANARY") {
		t.Error("output quotes the Secret's value")
	}
	if r := run(t, nil, "list", "artifacts", "oci://"+reg.Host+"/org/app"); r.code == 0 && strings.Contains(r.stdout, ":v1") {
		t.Errorf("the artifact was pushed:\n%s", r.stdout)
	}
	// Without the flag, as flux, it is pushed.
	if r := run(t, nil, pushArgs(url, dir)...); r.code != 0 || !strings.Contains(r.stderr, "✔ artifact successfully pushed to "+reg.Host+"/org/app@sha256:") {
		t.Errorf("push without the flag: exit %d\n%s", r.code, r.stderr)
	}
}

// TestTagList: tag artifact adds tags; list artifacts filters by semver and
// regex.
func TestTagList(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	dir := writeDir(t, sourceFiles())
	if r := run(t, nil, pushArgs("oci://"+reg.Host+"/org/app:v1.0.0", dir)...); r.code != 0 {
		t.Fatalf("push: %s", r.stderr)
	}
	r := run(t, nil, "tag", "artifact", "oci://"+reg.Host+"/org/app:v1.0.0", "--tag", "1.1.0", "--tag=2.0.0,latest")
	for _, tag := range []string{"1.1.0", "2.0.0", "latest"} {
		if want := "✔ artifact tagged as " + reg.Host + "/org/app:" + tag; r.code != 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("tag: exit %d, lacks %q:\n%s", r.code, want, r.stderr)
		}
	}
	rows := func(args ...string) []string {
		t.Helper()
		r := run(t, nil, append([]string{"list", "artifacts", "oci://" + reg.Host + "/org/app"}, args...)...)
		if r.code != 0 {
			t.Fatalf("list: exit %d\n%s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if !strings.HasPrefix(lines[0], "ARTIFACT") || !strings.Contains(lines[0], "DIGEST") || !strings.Contains(lines[0], "REVISION") {
			t.Errorf("header %q", lines[0])
		}
		var tags []string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) != 4 || f[2] != "https://example.com/org/repo.git" {
				t.Errorf("row %q", l)
			}
			tags = append(tags, strings.TrimPrefix(f[0], reg.Host+"/org/app:"))
		}
		return tags
	}
	if got := strings.Join(rows(), " "); got != "v1.0.0 latest 2.0.0 1.1.0" {
		t.Errorf("list: %s", got)
	}
	if got := strings.Join(rows("--filter-semver", ">=1.1.0"), " "); got != "2.0.0 1.1.0" {
		t.Errorf("list --filter-semver: %s", got)
	}
	if got := strings.Join(rows("--filter-semver", "<2.0.0", "--filter-regex", "^v"), " "); got != "v1.0.0" {
		t.Errorf("list --filter-semver --filter-regex: %s", got)
	}
}

// TestDiff: no changes, then the files that differ by name; errors exit 2.
func TestDiff(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	dir := writeDir(t, sourceFiles())
	url := "oci://" + reg.Host + "/org/app:v1"
	if r := run(t, nil, pushArgs(url, dir)...); r.code != 0 {
		t.Fatalf("push: %s", r.stderr)
	}
	if r := run(t, nil, "diff", "artifact", url, "--path", dir); r.code != 0 || !strings.Contains(r.stderr, "✔ no changes detected") {
		t.Errorf("diff of the same files: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte("changed: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new.yaml"), []byte("new: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "nested", "deep.yaml")); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "diff", "artifact", url, "--path", dir)
	want := "► app.yaml (changed)\n► nested/deep.yaml (only in the artifact)\n► new.yaml (only in " + dir + ")\n"
	if r.code != 1 || r.stdout != want || !strings.Contains(r.stderr, "the remote artifact contents differs from the local one") {
		t.Errorf("diff: exit %d, stdout %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
	}
	for _, args := range [][]string{{"diff", "artifact", url}, {"diff", "artifact", "ghcr.io/x", "--path", dir}, {"diff", "artifact", url, "--path", dir, "--bogus"}} {
		if r := run(t, nil, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}

// TestPullTampered: a layer that does not match its digest is refused and
// nothing is written.
func TestPullTampered(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	dir := writeDir(t, sourceFiles())
	url := "oci://" + reg.Host + "/org/app:v1"
	if r := run(t, nil, pushArgs(url, dir)...); r.code != 0 {
		t.Fatalf("push: %s", r.stderr)
	}
	tgz := filepath.Join(t.TempDir(), "a.tgz")
	if r := run(t, nil, "build", "artifact", "-p", dir, "-o", tgz); r.code != 0 {
		t.Fatal(r.stderr)
	}
	layer, _ := os.ReadFile(tgz)
	reg.Tamper(artifact.Digest(layer))
	out := t.TempDir()
	r := run(t, nil, "pull", "artifact", url, "--output", out)
	if r.code != 1 || !strings.Contains(r.stderr, "layer digest mismatch") {
		t.Errorf("pull of a tampered layer: exit %d\n%s", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("files written: %v", ents)
	}
	if r := run(t, nil, "diff", "artifact", url, "--path", dir); r.code != 2 || !strings.Contains(r.stderr, "layer digest mismatch") {
		t.Errorf("diff against a tampered layer: exit %d\n%s", r.code, r.stderr)
	}
}

// TestCredentials: a registry behind basic auth and TLS (certificate not
// verified with --insecure-registry), reached with --creds and with a
// docker config.json; without credentials it is refused, and the
// password is never printed.
func TestCredentials(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{TLS: true, User: "flux", Password: "s3cret-ocicmd"})
	dir := writeDir(t, sourceFiles())
	url := "oci://" + reg.Host + "/org/app:v1"
	r := run(t, nil, pushArgs(url, dir, "--creds=flux:s3cret-ocicmd", "--insecure-registry")...)
	if r.code != 0 || !strings.Contains(r.stderr, "► logging in to registry with credentials") {
		t.Fatalf("push --creds: exit %d\n%s", r.code, r.stderr)
	}
	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("flux:s3cret-ocicmd"))
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, map[string]string{"DOCKER_CONFIG": cfg}, "pull", "artifact", url, "-o", t.TempDir(), "--insecure-registry"); r.code != 0 {
		t.Errorf("pull with DOCKER_CONFIG: exit %d\n%s", r.code, r.stderr)
	}
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cfg, "config.json"), filepath.Join(home, ".docker", "config.json")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, map[string]string{"HOME": home}, "tag", "artifact", url, "--tag", "v2", "--insecure-registry"); r.code != 0 {
		t.Errorf("tag with ~/.docker/config.json: exit %d\n%s", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"pull", "artifact", url, "-o", t.TempDir(), "--insecure-registry"},
		{"pull", "artifact", url, "-o", t.TempDir(), "--insecure-registry", "--creds", "flux:wrong-s3cret-ocicmd"},
		{"list", "artifacts", url, "--creds", "flux:s3cret-ocicmd"}, // TLS verified: the test certificate is not trusted
	} {
		r := run(t, nil, args...)
		if r.code == 0 {
			t.Errorf("%v succeeded", args)
		}
		if strings.Contains(r.stdout+r.stderr, "s3cret-ocicmd") {
			t.Errorf("%v: output quotes the password:\n%s", args, r.stderr)
		}
	}
}

// TestRefusals: flux flags lacre lacks, and mistakes, fail loudly.
func TestRefusals(t *testing.T) {
	dir := writeDir(t, sourceFiles())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{pushArgs("oci://127.0.0.1:1/a:v1", dir, "--provider=aws"), `--provider "aws" is not supported by lacre`},
		{pushArgs("oci://127.0.0.1:1/a:v1", dir, "--resolve-symlinks"), "--resolve-symlinks is not supported by lacre"},
		{pushArgs("oci://127.0.0.1:1/a@sha256:"+strings.Repeat("0", 64), dir), "push needs a tag"},
		{pushArgs("127.0.0.1:1/a:v1", dir), "URL must be in format 'oci://<domain>/<org>/<repo>'"},
		{pushArgs("oci://127.0.0.1:1/a:v1", dir, "--output=table"), `--output "table": want json or yaml`},
		{pushArgs("oci://127.0.0.1:1/a:v1", dir, "-a", "novalue"), "invalid annotation novalue, must be in the format key=value"},
		{[]string{"push", "artifact", "oci://127.0.0.1:1/a:v1", "--path", dir, "--revision", "r"}, "--source is required"},
		{[]string{"pull", "artifact", "oci://127.0.0.1:1/a:v1"}, "output path cannot be empty"},
		{[]string{"tag", "artifact", "oci://127.0.0.1:1/a:v1"}, "--tag is required"},
		{[]string{"list", "artifacts"}, "artifact repository URL is required"},
		{[]string{"build", "artifact"}, `invalid path ""`},
	} {
		r := run(t, nil, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr lacks %q:\n%s", tc.args, r.code, tc.want, r.stderr)
		}
	}
}
