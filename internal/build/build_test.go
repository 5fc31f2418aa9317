package build

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

const canary = "CANARY-bb1c-secret"

func encrypt(t *testing.T, r keys.Recipient, name, plain string, rules sopsfile.Rules) []byte {
	t.Helper()
	f := formats.FormatForPath(name)
	out, err := sopsfile.Encrypt(context.Background(), []byte(plain), sopsfile.EncryptOptions{InputFormat: f, OutputFormat: f, Groups: [][]keys.Recipient{{r}}, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fixture(t *testing.T) (artifact.Files, keys.Identity) {
	id, _ := age.GenerateX25519Identity()
	ours, _ := agekeys.ParseIdentity(id.String())
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: " + canary + "\n"
	files := artifact.Files{
		"apps/kustomization.yaml": []byte("resources:\n  - secret.yaml\n  - cm.yaml\nsecretGenerator:\n  - name: gen\n    envs:\n      - app.env\n    files:\n      - token.json\n"),
		"apps/secret.yaml":        encrypt(t, r, "secret.yaml", secret, sopsfile.Rules{EncryptedRegex: "^(data|stringData)$"}),
		"apps/cm.yaml":            []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  annotations:\n    n: \"1\"\ndata:\n  k: v\nbinaryData: {}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}\n"),
		"apps/app.env":            encrypt(t, r, "app.env", "API_KEY="+canary+"\n", sopsfile.Rules{}),
		"apps/token.json":         encrypt(t, r, "token.json", `{"token": "`+canary+`"}`, sopsfile.Rules{}),
		"plain/deploy.yaml":       []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gen-cm\n"),
		"plain/notes.yaml":        []byte("not: a manifest\n"),
	}
	return files, ours
}

func find(res *Result, kind, prefix string) map[string]any {
	for _, o := range res.Objects {
		if o.GetKind() == kind && strings.HasPrefix(o.GetName(), prefix) {
			return o.Object
		}
	}
	return nil
}

func TestBuildDecrypts(t *testing.T) {
	files, id := fixture(t)
	res, err := Build(context.Background(), files, Options{
		Path: "./apps", Decrypt: true, Identities: []keys.Identity{id},
		Spec: kustomizev1.KustomizationSpec{TargetNamespace: "prod", CommonMetadata: &kustomizev1.CommonMetadata{Labels: map[string]string{"team": "a"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Decrypted != 3 {
		t.Errorf("decrypted %d files, want 3", res.Decrypted)
	}
	db := find(res, "Secret", "db")
	if db == nil || db["stringData"].(map[string]any)["password"] != canary {
		t.Fatalf("db secret: %v", db)
	}
	if _, ok := db["sops"]; ok {
		t.Fatal("sops metadata left in the object")
	}
	gen := find(res, "Secret", "gen-")
	data := gen["data"].(map[string]any)
	for k, want := range map[string]string{"API_KEY": canary, "token.json": `"token": "` + canary} {
		raw, _ := base64.StdEncoding.DecodeString(data[k].(string))
		if !strings.Contains(string(raw), want) {
			t.Errorf("generated %s = %q", k, raw)
		}
	}
	for _, o := range res.Objects {
		_ = o.DeepCopy() // numbers must be int64 for Kubernetes clients
		if o.GetNamespace() != "prod" || o.GetLabels()["team"] != "a" {
			t.Errorf("%s/%s: namespace %q labels %v", o.GetKind(), o.GetName(), o.GetNamespace(), o.GetLabels())
		}
	}
}

// TestBuildGeneratesKustomization: a directory without a kustomization
// file is built as Flux's generator does: every .yaml/.yml file (each must
// decode as Kubernetes objects, or the build fails naming it), not .json,
// subdirectories with a kustomization file as one resource; a directory
// with no manifests (only files the artifact kept beside .sops.yaml) builds
// to nothing; a missing path gives Flux's "kustomization path not found".
func TestBuildGeneratesKustomization(t *testing.T) {
	files, id := fixture(t)
	opts := Options{Path: "plain", Decrypt: true, Identities: []keys.Identity{id}}
	_, err := Build(context.Background(), files, opts)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != "plain/notes.yaml" || !strings.Contains(err.Error(), "failed to decode Kubernetes YAML") {
		t.Fatalf("a YAML file that is no Kubernetes object: %v", err)
	}
	delete(files, "plain/notes.yaml")
	files["plain/extra.json"] = []byte(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "json-cm"}}`)
	files["plain/empty.yml"] = nil
	files["plain/sub/kustomization.yaml"] = []byte("resources: [cm.yaml]\n")
	files["plain/sub/cm.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sub-cm\n")
	files["plain/sub/notes.yaml"] = []byte("not: listed by sub/kustomization.yaml\n")
	res, err := Build(context.Background(), files, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range res.Objects {
		got = append(got, o.GetName())
	}
	if !slices.Equal(got, []string{"gen-cm", "sub-cm"}) {
		t.Fatalf("objects: %v", got)
	}

	dirsOnly := map[string]bool{"": true, "clusters": true, "clusters/cluster0": true}
	only := artifact.Files{"clusters/cluster0/.sops.pub.asc": []byte("public key\n")}
	for name, dirs := range map[string]map[string]bool{"directory entry only": dirsOnly, "a public key file": nil} {
		f := artifact.Files{}
		if dirs == nil {
			f = only
		}
		res, err := Build(context.Background(), f, Options{Path: "./clusters/cluster0", Dirs: dirs})
		if err != nil || len(res.Objects) != 0 {
			t.Errorf("%s: %v %v", name, res, err)
		}
	}
	_, err = Build(context.Background(), only, Options{Path: "./clusters/cluster1"})
	if !errors.Is(err, ErrPathNotFound) || err.Error() != "kustomization path not found: stat ./clusters/cluster1: no such file or directory" {
		t.Errorf("missing path: %v", err)
	}
	_, err = Build(context.Background(), only, Options{Path: "./clusters/cluster0/.sops.pub.asc"})
	if !errors.Is(err, ErrPathNotFound) || !strings.HasSuffix(err.Error(), "not a directory") {
		t.Errorf("a file as the path: %v", err)
	}
}

func TestBuildFailures(t *testing.T) {
	files, id := fixture(t)
	other, _ := age.GenerateX25519Identity()
	wrong, _ := agekeys.ParseIdentity(other.String())
	ctx := context.Background()

	check := func(name string, err error, want error, file string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if want != nil && !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", name, err, want)
		}
		if file != "" && !strings.Contains(err.Error(), file) {
			t.Fatalf("%s: error does not name %s: %v", name, file, err)
		}
		if strings.Contains(err.Error(), canary) {
			t.Fatalf("%s: error leaks the canary: %v", name, err)
		}
	}
	_, err := Build(ctx, files, Options{Path: "apps", Decrypt: true, Identities: []keys.Identity{wrong}})
	check("wrong key", err, keys.ErrNoKey, "apps/")
	_, err = Build(ctx, files, Options{Path: "apps"})
	check("no decryption", err, ErrEncryptedNotDecrypted, "Secret")

	tampered := artifact.Files{}
	for k, v := range files {
		tampered[k] = v
	}
	tampered["apps/secret.yaml"] = []byte(strings.Replace(string(files["apps/secret.yaml"]), "name: db", "name: dc", 1))
	_, err = Build(ctx, tampered, Options{Path: "apps", Decrypt: true, Identities: []keys.Identity{id}})
	check("tampered", err, sops.ErrMACMismatch, "apps/secret.yaml")

	remote := artifact.Files{"k/kustomization.yaml": []byte("resources:\n  - https://example.com/x.yaml\n")}
	_, err = Build(ctx, remote, Options{Path: "k"})
	check("remote", err, nil, "not allowed")

	escape := artifact.Files{"k/kustomization.yaml": []byte("resources:\n  - ../../../etc/passwd\n")}
	_, err = Build(ctx, escape, Options{Path: "k"})
	check("escape", err, nil, "")
	_, err = Build(ctx, files, Options{Path: "../.."})
	check("path", err, nil, "")
}

func TestRequireEncryptedSecrets(t *testing.T) {
	files, id := fixture(t)
	files["apps/plain-secret.yaml"] = []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: oops\nstringData:\n  k: " + canary + "\n")
	_, err := Build(context.Background(), files, Options{Path: "apps", Decrypt: true, Identities: []keys.Identity{id}, RequireEncryptedSecrets: true})
	if !errors.Is(err, ErrPlaintextSecret) || !strings.Contains(err.Error(), "apps/plain-secret.yaml") || strings.Contains(err.Error(), canary) {
		t.Fatalf("got %v", err)
	}
	delete(files, "apps/plain-secret.yaml")
	if _, err := Build(context.Background(), files, Options{Path: "apps", Decrypt: true, Identities: []keys.Identity{id}, RequireEncryptedSecrets: true}); err != nil {
		t.Fatal(err)
	}
}
