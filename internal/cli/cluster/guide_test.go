package cluster

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/internal/testsupport"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

// TestSeedGuideWithCLI follows the seed guide ("Manage Kubernetes secrets
// with Mozilla SOPS") step by step with lacre in place of both sops and
// flux, against a real API server, lacre's controllers and a Git server:
// a GPG key without passphrase, the sops-gpg Secret, the GitRepository, the
// Kustomization with --decryption-provider=sops, a .sops.yaml with
// encrypted_regex, kubectl's dry-run Secret encrypted in place, commit,
// reconcile, the Secret in the cluster. Then the guide's age and Vault
// variants.
func TestSeedGuideWithCLI(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gpg is required in CI")
		}
		t.Skip("gpg is not installed")
	}
	cl, c := startCluster(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", cl.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	installCRDs(t, c)
	ctrl.SetLogger(logr.Discard())
	mgr, err := controller.NewManager(controller.Options{Config: cfg, Concurrent: 2, MetricsAddr: "0", HealthAddr: "0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer mgr.Close()
	go mgr.Run(ctx)

	kc := "--kubeconfig=" + cl.Kubeconfig()
	lacre := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, "", append(args, kc)...)
		if code != 0 {
			_, st, _ := runCLI(t, "", "get", "kustomizations", "-A", kc)
			_, sr, _ := runCLI(t, "", "get", "sources", "git", "-A", kc)
			t.Logf("kustomizations:\n%s\nsources:\n%s", st, sr)
			t.Fatalf("lacre %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	// lacreHere runs a file command (encrypt) in dir, where .sops.yaml is.
	lacreHere := func(dir string, args ...string) {
		t.Helper()
		t.Chdir(dir)
		code, out, errs := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("lacre %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
	}
	for _, ns := range []string{"flux-system", "app-age", "app-vault"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	srv := gittest.New(t, "", "")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	gnupg := filepath.Join(home, ".gnupg")
	os.MkdirAll(gnupg, 0o700)
	t.Setenv("GNUPGHOME", gnupg)
	gpg := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return string(out)
	}
	secretIn := func(ns, want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			sec := &corev1.Secret{}
			err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "basic-auth"}, sec)
			if err == nil && string(sec.Data["password"]) == want && string(sec.Data["user"]) == "admin" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Secret %s/basic-auth never got the decrypted password (last error %v)", ns, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// kubectl -n NS create secret generic basic-auth --from-literal=user=admin
	// --from-literal=password=change-me --dry-run=client -o yaml
	dryRunSecret := func(ns, password string) string {
		return "apiVersion: v1\ndata:\n  password: " + b64(password) + "\n  user: YWRtaW4=\nkind: Secret\nmetadata:\n  creationTimestamp: null\n  name: basic-auth\n  namespace: " + ns + "\n"
	}

	// The guide with OpenPGP.
	{
		// Generate a GPG key with no passphrase (%no-protection).
		gpg(`%no-protection
Key-Type: 1
Key-Length: 4096
Subkey-Type: 1
Subkey-Length: 4096
Expire-Date: 0
Name-Comment: flux secrets
Name-Real: cluster0.yourdomain.com
`, "--full-generate-key")
		fp := regexp.MustCompile(`(?m)^fpr:+([0-9A-F]{40}):`).FindStringSubmatch(gpg("", "--with-colons", "--list-secret-keys", "cluster0.yourdomain.com"))
		if fp == nil {
			t.Fatal("no fingerprint")
		}
		keyFP := fp[1]
		// Export the key pair into the sops-gpg Secret (the guide pipes
		// gpg into kubectl create secret generic --from-file=sops.asc).
		asc := filepath.Join(home, "sops.asc")
		os.WriteFile(asc, []byte(gpg("", "--export-secret-keys", "--armor", keyFP)), 0o600)
		lacre("create", "secret", "sops", "sops-gpg", "--namespace=flux-system", "--pgp-key-file="+asc)

		repo := srv.NewRepo("secrets", "main")
		// The cluster's directory exists already (flux bootstrap made it).
		repo.Commit("init", map[string]string{"clusters/cluster0/README.md": "cluster0\n"})
		lacre("create", "source", "git", "my-secrets", "--url="+repo.URL(), "--branch=main", "--interval=1m")
		lacre("create", "kustomization", "my-secrets", "--source=my-secrets", "--path=./clusters/cluster0", "--prune=true",
			"--interval=10m", "--decryption-provider=sops", "--decryption-secret=sops-gpg")

		// Export the public key into the Git directory and write .sops.yaml.
		dir := filepath.Join(repo.Work, "clusters", "cluster0")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, ".sops.pub.asc"), []byte(gpg("", "--export", "--armor", keyFP)), 0o644)
		os.WriteFile(filepath.Join(dir, ".sops.yaml"), []byte("creation_rules:\n  - path_regex: .*.yaml\n    encrypted_regex: ^(data|stringData)$\n    pgp: "+keyFP+"\n"), 0o644)
		// kubectl ... --dry-run=client -o yaml > basic-auth.yaml, then
		// sops --encrypt --in-place basic-auth.yaml.
		os.WriteFile(filepath.Join(dir, "basic-auth.yaml"), []byte(dryRunSecret("default", "change-me")), 0o644)
		lacreHere(dir, "encrypt", "--in-place", "basic-auth.yaml")
		enc, _ := os.ReadFile(filepath.Join(dir, "basic-auth.yaml"))
		if strings.Contains(string(enc), b64("change-me")) || !strings.Contains(string(enc), "pgp:") || !strings.Contains(string(enc), "user: ENC[") {
			t.Fatalf("not encrypted as the guide says:\n%s", enc)
		}
		// The guide suggests deleting the private key locally: the cluster
		// decrypts with the Secret alone.
		gpg("", "--yes", "--delete-secret-keys", keyFP)
		repo.Commit("Add encrypted basic-auth", nil)
		lacre("reconcile", "kustomization", "my-secrets", "--with-source")
		secretIn("default", "change-me")
		if out := lacre("get", "kustomizations"); !strings.Contains(out, "my-secrets") || !strings.Contains(out, "True") {
			t.Errorf("get kustomizations:\n%s", out)
		}
	}

	// variant commits the guide's Secret encrypted under keyRule (the
	// .sops.yaml key line) to a repository of its own and has the cluster
	// decrypt it with the decryption Secret secret, into namespace app-NAME.
	variant := func(name, keyRule, secret string) {
		t.Helper()
		ns, password := "app-"+name, name+"-change-me"
		repo := srv.NewRepo("secrets-"+name, "main")
		dir := filepath.Join(repo.Work, "clusters", "cluster0")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, ".sops.yaml"), []byte("creation_rules:\n  - path_regex: .*.yaml\n    encrypted_regex: ^(data|stringData)$\n    "+keyRule+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "basic-auth.yaml"), []byte(dryRunSecret(ns, password)), 0o644)
		lacreHere(dir, "encrypt", "--in-place", "basic-auth.yaml")
		repo.Commit("Add encrypted basic-auth", nil)
		lacre("create", "source", "git", "my-secrets-"+name, "--url="+repo.URL(), "--branch=main", "--interval=1m")
		lacre("create", "kustomization", "my-secrets-"+name, "--source=my-secrets-"+name, "--path=./clusters/cluster0", "--prune=true",
			"--interval=10m", "--decryption-provider=sops", "--decryption-secret="+secret)
		secretIn(ns, password)
	}

	// The age variant.
	{
		keyFile := filepath.Join(home, "age.agekey")
		if code, _, errs := runCLI(t, "", "keygen", "-o", keyFile); code != 0 {
			t.Fatalf("lacre keygen: %s", errs)
		}
		data, _ := os.ReadFile(keyFile)
		pub := regexp.MustCompile(`(?m)^# public key: (age1\S+)$`).FindStringSubmatch(string(data))
		if pub == nil {
			t.Fatalf("no public key in %s", data)
		}
		lacre("create", "secret", "sops", "sops-age", "--namespace=flux-system", "--age-key-file="+keyFile)
		variant("age", "age: "+pub[1], "sops-age")
	}

	// The Vault transit variant.
	{
		vsrv := vaulttest.New("guide-vault-token")
		defer vsrv.Close()
		vsrv.CreateKey("sops", "firstkey")
		t.Setenv("VAULT_TOKEN", vsrv.Token)
		lacre("create", "secret", "sops", "sops-hcvault", "--namespace=flux-system", "--vault-token="+vsrv.Token, "--vault-address="+vsrv.URL)
		variant("vault", "hc_vault_transit_uri: "+vsrv.URL+"/v1/sops/keys/firstkey", "sops-hcvault")
	}

	// get -w prints the list, then a row per change until interrupted.
	{
		out := &testsupport.SyncBuffer{}
		a := &cliapp.App{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, Getenv: os.Getenv}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan int)
		go func() { done <- a.Run(wctx, []string{"get", "kustomizations", "-w", kc}, full...) }()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "my-secrets") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		lacre("reconcile", "kustomization", "my-secrets")
		for strings.Count(out.String(), "my-secrets ") < 2 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		if code := <-done; code != 0 && !strings.Contains(out.String(), "context canceled") {
			t.Errorf("get -w exited %d:\n%s", code, out.String())
		}
		if n := strings.Count(out.String(), "my-secrets "); n < 2 {
			t.Errorf("get -w printed no row for the change:\n%s", out.String())
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
