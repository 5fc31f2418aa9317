package cluster

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/inventory"
)

// The test key of testdata/script/build.txtar.
const (
	diffTestIdentity  = "AGE-SECRET-KEY-1VAL0TS6CM7408L9708Y2Z2XR860E3U89WD0JZNAXUJL9AUT9LZRQDD7FWW\n"
	diffTestRecipient = "age16p26fqlqz6535fc9wd96cdnqh0w44f7znk8w435hw0262yghgqrskn7jv5"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for n, body := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func secretYAML(password string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: apps\ntype: Opaque\nstringData:\n  password: " + password + "\n  user: admin\n"
}

// TestDiffAgainstCluster runs lacre diff against a real kube-apiserver.
func TestDiffAgainstCluster(t *testing.T) {
	cl, c := startCluster(t)
	ctx := context.Background()
	installCRDs(t, c)
	for _, ns := range []string{"flux-system", "apps"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	work := t.TempDir()
	dir := filepath.Join(work, "repo", "apps")
	keyFile := filepath.Join(work, "key.txt")
	writeFiles(t, work, map[string]string{
		"key.txt":                      diffTestIdentity,
		"repo/apps/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - settings.yaml\n  - db-secret.yaml\n",
		"repo/apps/settings.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: apps\ndata:\n  color: red\n",
	})
	env := map[string]string{"SOPS_AGE_KEY_FILE": keyFile}
	encrypt := func(password string) {
		t.Helper()
		p := filepath.Join(dir, "db-secret.yaml")
		writeFiles(t, dir, map[string]string{"db-secret.yaml": secretYAML(password)})
		if r := runCLIEnv(t, env, "encrypt", "-i", "--age", diffTestRecipient, "--encrypted-regex", "^(data|stringData)$", p); r.code != 0 {
			t.Fatalf("encrypt: %d %s", r.code, r.stderr)
		}
	}
	encrypt("s3cr3t-one")
	kc := "--kubeconfig=" + cl.Kubeconfig()
	diff := func(extra ...string) cliRun {
		t.Helper()
		r := runCLIEnv(t, env, append([]string{"diff", "kustomization", "apps", "--path", dir, kc}, extra...)...)
		for _, leak := range []string{"s3cr3t", base64.StdEncoding.EncodeToString([]byte("s3cr3t-one")), base64.StdEncoding.EncodeToString([]byte("s3cr3t-two"))} {
			if !contains(extra, "--show-secrets") && strings.Contains(r.stdout+r.stderr, leak) {
				t.Errorf("diff %v printed a secret value %q:\n%s\n%s", extra, leak, r.stdout, r.stderr)
			}
		}
		return r
	}

	// Nothing in the cluster yet: both objects would be created.
	r := diff("--decrypt")
	if r.code != 1 || !strings.Contains(r.stdout, "► ConfigMap/apps/settings (created)") || !strings.Contains(r.stdout, "► Secret/apps/db (created)") {
		t.Fatalf("first diff: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Apply what lacre build --decrypt --show-secrets gives, as the
	// controller would (its labels included).
	b := runCLIEnv(t, env, "build", "kustomization", "apps", "--path", dir, kc, "--decrypt", "--show-secrets")
	if b.code != 0 {
		t.Fatalf("build: %d %s", b.code, b.stderr)
	}
	for _, doc := range strings.Split(b.stdout, "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetLabels(map[string]string{inventory.NameLabel: "apps", inventory.NamespaceLabel: "flux-system"})
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("lacre"), client.ForceOwnership); err != nil {
			t.Fatal(err)
		}
	}
	// An object of an older revision, in the inventory, to be pruned.
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "apps",
		Labels: map[string]string{inventory.NameLabel: "apps", inventory.NamespaceLabel: "flux-system"}}, Data: map[string]string{"k": "v"}}
	if err := c.Create(ctx, old); err != nil {
		t.Fatal(err)
	}

	// No Kustomization in the cluster yet: default spec, no diff.
	r = diff("--decrypt")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("diff after apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Without --decrypt, the encrypted Secret is compared by its keys.
	r = diff()
	if r.code != 0 {
		t.Fatalf("diff without --decrypt: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A changed Secret value: exit 1, masked, showing that it changed.
	encrypt("s3cr3t-two")
	r = diff("--decrypt")
	if r.code != 1 || !strings.Contains(r.stdout, "► Secret/apps/db") ||
		!strings.Contains(r.stdout, "-  password: '*** (before)'") || !strings.Contains(r.stdout, "+  password: '*** (after)'") ||
		!strings.Contains(r.stdout, "   user: '***'") || strings.Contains(r.stdout, "ConfigMap") {
		t.Fatalf("changed Secret: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = diff("--decrypt", "--show-secrets")
	if r.code != 1 || !strings.Contains(r.stdout, "+  password: "+base64.StdEncoding.EncodeToString([]byte("s3cr3t-two"))) ||
		!strings.Contains(r.stdout, "-  password: "+base64.StdEncoding.EncodeToString([]byte("s3cr3t-one"))) {
		t.Fatalf("--show-secrets: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	encrypt("s3cr3t-one")

	// A new object and a pruned one, with the Kustomization in the cluster.
	writeFiles(t, dir, map[string]string{
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - settings.yaml\n  - db-secret.yaml\n  - extra.yaml\n",
		"extra.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: apps\ndata:\n  new: value\n",
	})
	ks := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: "flux-system"},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: "./apps", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}}}
	if err := c.Create(ctx, ks); err != nil {
		t.Fatal(err)
	}
	ks.Status.Inventory = &kustomizev1.ResourceInventory{Entries: []kustomizev1.ResourceRef{
		{ID: "apps_settings__ConfigMap", Version: "v1"}, {ID: "apps_db__Secret", Version: "v1"}, {ID: "apps_old__ConfigMap", Version: "v1"},
	}}
	if err := c.Status().Update(ctx, ks); err != nil {
		t.Fatal(err)
	}
	r = diff("--decrypt")
	if r.code != 1 || !strings.Contains(r.stdout, "► ConfigMap/apps/extra (created)") || !strings.Contains(r.stdout, "+  new: value") ||
		!strings.Contains(r.stdout, "► ConfigMap/apps/old (pruned)") || !strings.Contains(r.stdout, "-  k: v") || strings.Contains(r.stdout, "Secret/") {
		t.Fatalf("created and pruned: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// spec.ignore: a change in the cluster at an ignored path is no diff.
	settings := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "settings"}, settings); err != nil {
		t.Fatal(err)
	}
	settings.Data["color"] = "blue"
	if err := c.Update(ctx, settings); err != nil {
		t.Fatal(err)
	}
	if r = diff("--decrypt"); !strings.Contains(r.stdout, "-  color: blue") {
		t.Fatalf("changed in the cluster: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ks.Spec.Ignore = []kustomizev1.IgnoreRule{{Paths: []string{"/data/color"}, Target: &kustomizev1.Selector{Kind: "ConfigMap", Name: "settings"}}}
	if err := c.Update(ctx, ks); err != nil {
		t.Fatal(err)
	}
	if r = diff("--decrypt"); r.code != 1 || strings.Contains(r.stdout, "settings") || !strings.Contains(r.stdout, "ConfigMap/apps/extra (created)") {
		t.Fatalf("ignored path: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Errors exit >1.
	if r := diff("--decrypt", "--path", filepath.Join(work, "nope")); r.code != 2 || !strings.Contains(r.stderr, "lacre: error: --path") {
		t.Fatalf("bad path: exit %d\n%s", r.code, r.stderr)
	}
	if r := runCLIEnv(t, env, "diff", "kustomization", "apps", "--path", dir, "--kubeconfig", filepath.Join(work, "nope")); r.code != 2 || !strings.Contains(r.stderr, "no cluster") {
		t.Fatalf("no cluster: exit %d\n%s", r.code, r.stderr)
	}
	if r := runCLIEnv(t, env, "diff", "kustomization", "apps", "--bogus"); r.code != 2 {
		t.Fatalf("bad flag: exit %d\n%s", r.code, r.stderr)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
