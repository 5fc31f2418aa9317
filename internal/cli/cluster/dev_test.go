package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/devcluster"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/internal/testcluster"
	"github.com/lacre/lacre/internal/testsupport"
)

// requireControlPlane skips when kube-apiserver is not built (fails in CI
// or with LACRE_REQUIRE_CLUSTER=1).
func requireControlPlane(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(testcluster.DefaultBinDir(), "kube-apiserver")); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("LACRE_REQUIRE_CLUSTER") == "1" {
			t.Fatal(err)
		}
		t.Skip("control plane not built")
	}
}

// lacreExe returns an executable named lacre that runs the full command
// tree (this test binary, through TestMain), for commands that must run
// in processes of their own.
func lacreExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "lacre")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// kubeClient is a client for the kubeconfig at path.
func kubeClient(t *testing.T, path string) client.Client {
	t.Helper()
	ctrl.SetLogger(logr.Discard())
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// noneAlive fails the test for each of pids still running.
func noneAlive(t *testing.T, pids []int) {
	t.Helper()
	for _, p := range pids {
		if testcluster.Alive(p) {
			t.Errorf("process %d still running", p)
		}
	}
}

// filesHolding lists the files under dir that contain any of values.
func filesHolding(t *testing.T, dir string, values ...string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) {
				hits = append(hits, p)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestDevUpDown runs `lacre dev up` in a directory, follows the seed
// guide's age flow against it, stops it, starts it again on the same
// directory and finds the decrypted Secret there, never as plaintext on
// disk, and no process left behind.
func TestDevUpDown(t *testing.T) {
	requireControlPlane(t)
	g := gomega.NewWithT(t)
	lacreBin, dir := lacreExe(t), filepath.Join(t.TempDir(), "dev")
	ext := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(lacreBin, append(args, "--dir", dir)...).CombinedOutput()
		return string(out), err
	}
	mustExt := func(args ...string) string {
		t.Helper()
		out, err := ext(args...)
		if err != nil {
			t.Fatalf("lacre %v: %v\n%s", args, err, out)
		}
		return out
	}
	var states []*devcluster.State
	t.Cleanup(func() { // on failure, leave nothing running
		_, _ = ext("dev", "down")
		for _, st := range states {
			noneAlive(t, append([]int{st.Pid}, st.Servers...))
		}
	})
	up := func() client.Client {
		t.Helper()
		if out := mustExt("dev", "up"); !strings.Contains(out, "lacre dev: up (pid") || !strings.Contains(out, "export KUBECONFIG="+filepath.Join(dir, "kubeconfig")) {
			t.Fatalf("dev up:\n%s", out)
		}
		st, err := devcluster.ReadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
		return kubeClient(t, filepath.Join(dir, devcluster.KubeconfigFile))
	}
	down := func() {
		t.Helper()
		if out := mustExt("dev", "down"); !strings.Contains(out, "lacre dev: stopped") {
			t.Fatalf("dev down:\n%s", out)
		}
		st := states[len(states)-1]
		noneAlive(t, append([]int{st.Pid}, st.Servers...))
		if out, err := ext("dev", "status"); err == nil || !strings.Contains(out, "not running in "+dir) {
			t.Errorf("dev status after down: %v\n%s", err, out)
		}
	}

	c := up()
	ctx := context.Background()
	for _, f := range []string{devcluster.KubeconfigFile, devcluster.EncryptionFile, devcluster.StateFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode())
		}
	}
	if out := mustExt("dev", "status"); !strings.Contains(out, "running: pid") {
		t.Errorf("dev status:\n%s", out)
	}
	// lacre install's CRDs and RBAC, and flux-system.
	if err := c.Get(ctx, client.ObjectKey{Name: "lacre-controller"}, &rbacv1.ClusterRole{}); err != nil {
		t.Errorf("ClusterRole lacre-controller: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: devcluster.FluxNamespace}, &corev1.Namespace{}); err != nil {
		t.Errorf("namespace flux-system: %v", err)
	}

	// The seed guide's age flow, with lacre in place of sops and flux.
	password := "dev-guide-" + randomHex(t)
	kc := "--kubeconfig=" + filepath.Join(dir, devcluster.KubeconfigFile)
	lacre := func(args ...string) {
		t.Helper()
		if code, out, errs := runCLI(t, "", append(args, kc)...); code != 0 {
			t.Fatalf("lacre %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
	}
	keyFile := filepath.Join(t.TempDir(), "age.agekey")
	if code, _, errs := runCLI(t, "", "keygen", "-o", keyFile); code != 0 {
		t.Fatalf("lacre keygen: %s", errs)
	}
	key, _ := os.ReadFile(keyFile)
	pub := regexp.MustCompile(`(?m)^# public key: (age1\S+)$`).FindStringSubmatch(string(key))
	identity := regexp.MustCompile(`AGE-SECRET-KEY-\S+`).FindString(string(key))
	if pub == nil || identity == "" {
		t.Fatalf("no age key in %s", keyFile)
	}
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("secrets", "main")
	work := filepath.Join(repo.Work, "clusters", "cluster0")
	os.MkdirAll(work, 0o755)
	os.WriteFile(filepath.Join(work, ".sops.yaml"), []byte("creation_rules:\n  - path_regex: .*.yaml\n    encrypted_regex: ^(data|stringData)$\n    age: "+pub[1]+"\n"), 0o644)
	os.WriteFile(filepath.Join(work, "basic-auth.yaml"), []byte("apiVersion: v1\ndata:\n  password: "+b64(password)+"\n  user: YWRtaW4=\nkind: Secret\nmetadata:\n  name: basic-auth\n  namespace: default\n"), 0o644)
	t.Chdir(work)
	if code, out, errs := runCLI(t, "", "encrypt", "--in-place", "basic-auth.yaml"); code != 0 {
		t.Fatalf("lacre encrypt: exit %d\n%s%s", code, out, errs)
	}
	repo.Commit("Add encrypted basic-auth", nil)
	lacre("create", "secret", "sops", "sops-age", "--age-key-file="+keyFile)
	lacre("create", "source", "git", "my-secrets", "--url="+repo.URL(), "--branch=main", "--interval=1m")
	lacre("create", "kustomization", "my-secrets", "--source=my-secrets", "--path=./clusters/cluster0", "--prune=true",
		"--interval=10m", "--decryption-provider=sops", "--decryption-secret=sops-age")
	decrypted := func(c client.Client) func() string {
		return func() string {
			sec := &corev1.Secret{}
			_ = c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "basic-auth"}, sec)
			return string(sec.Data["password"])
		}
	}
	g.Eventually(decrypted(c), 60*time.Second, 200*time.Millisecond).Should(gomega.Equal(password))
	// A ConfigMap is not encrypted at rest: the grep below must find its
	// value, which shows that it reads etcd's data.
	marker := "dev-marker-" + randomHex(t)
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "marker"}, Data: map[string]string{"v": marker}}); err != nil {
		t.Fatal(err)
	}
	down()

	// Again on the same directory: the objects are still there.
	c = up()
	g.Eventually(decrypted(c), 30*time.Second, 200*time.Millisecond).Should(gomega.Equal(password))
	if err := c.Get(ctx, client.ObjectKey{Namespace: devcluster.FluxNamespace, Name: "my-secrets"}, &kustomizev1.Kustomization{}); err != nil {
		t.Errorf("the Kustomization after a restart: %v", err)
	}
	down()

	if hits := filesHolding(t, dir, password, b64(password), identity); len(hits) > 0 {
		t.Errorf("plaintext found in %v", hits)
	}
	if hits := filesHolding(t, filepath.Join(dir, "etcd"), marker); len(hits) == 0 {
		t.Errorf("the ConfigMap's value is nowhere under %s/etcd: the search reads nothing", dir)
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestDemoKeep runs `lacre demo --keep`, lists the decrypted Secret
// through the KUBECONFIG it prints, stops it with `lacre dev down` and
// finds its directory removed and no process left.
func TestDemoKeep(t *testing.T) {
	requireControlPlane(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	lacreBin := lacreExe(t)
	out := &testsupport.SyncBuffer{}
	cmd := exec.Command(lacreBin, "demo", "--keep")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(os.Interrupt)
			<-exited
		}
	})
	g := gomega.NewWithT(t)
	g.Eventually(func() bool {
		select {
		case <-exited:
			t.Fatalf("demo --keep exited early: %v\n%s", waitErr, out.String())
		default:
		}
		return strings.Contains(out.String(), "Stop with Ctrl-C")
	}, 3*time.Minute, 200*time.Millisecond).Should(gomega.BeTrue())
	text := out.String()
	kcm := regexp.MustCompile(`export KUBECONFIG=(\S+)`).FindStringSubmatch(text)
	dirm := regexp.MustCompile(`lacre dev down --dir (\S+)`).FindStringSubmatch(text)
	keym := regexp.MustCompile(`export SOPS_AGE_KEY_FILE=(\S+)`).FindStringSubmatch(text)
	if kcm == nil || dirm == nil || keym == nil || !strings.Contains(text, "git clone http://127.0.0.1:") {
		t.Fatalf("demo --keep did not print the KUBECONFIG, the key file, the clone command and how to stop:\n%s", text)
	}
	if _, err := os.Stat(keym[1]); err != nil {
		t.Errorf("age key file: %v", err)
	}
	c := kubeClient(t, kcm[1])
	list := &corev1.SecretList{}
	if err := c.List(context.Background(), list, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range list.Items {
		found = found || (s.Name == "basic-auth" && string(s.Data["password"]) == "rotated-by-the-demo")
	}
	if !found {
		t.Errorf("no decrypted basic-auth Secret in %d Secrets listed through %s", len(list.Items), kcm[1])
	}
	st, err := devcluster.ReadState(dirm[1])
	if err != nil {
		t.Fatal(err)
	}

	down, err := exec.Command(lacreBin, "dev", "down", "--dir", dirm[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(down), "stopped") {
		t.Fatalf("dev down: %v\n%s", err, down)
	}
	<-exited
	if waitErr != nil {
		t.Errorf("demo --keep: %v\n%s", waitErr, out.String())
	}
	noneAlive(t, append([]int{st.Pid}, st.Servers...))
	if _, err := os.Stat(dirm[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the demo's directory %s is still there: %v", dirm[1], err)
	}
}
