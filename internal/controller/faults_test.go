package controller

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

// Fault tests: each fault is reported in a condition that names its cause
// (and no secret), nothing is pruned while a revision cannot be built or
// decrypted, and the controller converges once the fault clears.

const faultCanary = "fault-CANARY-91b7"

func newAgeKey(t *testing.T) (*age.X25519Identity, keys.Recipient) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := agekeys.ParseRecipient(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	return id, r
}

func secretYAML(ns, name, password string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\nstringData:\n  password: " + password + "\n"
}

func cmYAML(ns, name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\ndata:\n  a: b\n"
}

func putAgeSecret(g Gomega, ns, name string, id *age.X25519Identity) {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	err := testClient.Get(testCtx, client.ObjectKeyFromObject(sec), sec)
	sec.StringData = map[string]string{"age.agekey": id.String()}
	sec.Data = nil
	if err == nil {
		g.Expect(testClient.Update(testCtx, sec)).To(Succeed())
		return
	}
	g.Expect(testClient.Create(testCtx, sec)).To(Succeed())
}

// faultKS is a pruning Kustomization of ./apps that retries every second.
func faultKS(ns, secret string, lbl map[string]string) *kustomizev1.Kustomization {
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps", Labels: lbl},
		Spec: kustomizev1.KustomizationSpec{
			Interval:      metav1.Duration{Duration: 10 * time.Minute},
			RetryInterval: &metav1.Duration{Duration: time.Second},
			Path:          "./apps",
			Prune:         true,
			SourceRef:     kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "my-secrets"},
		},
	}
	if secret != "" {
		ks.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: secret}}
	}
	return ks
}

// appliedAt waits until the Kustomization is Ready at main@sha1:commit.
func appliedAt(g Gomega, ns, commit string, timeout time.Duration) {
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "apps")
		g.Expect(k.Status.LastAppliedRevision).To(Equal("main@sha1:" + commit))
	}, timeout, 250*time.Millisecond).Should(Succeed())
}

// ksFailing waits for Ready=False and returns the condition.
func ksFailing(g Gomega, ns string, check func(g Gomega, c *metav1.Condition)) {
	g.Eventually(func(g Gomega) {
		c := apimeta.FindStatusCondition(getKS(g, ns, "apps").Status.Conditions, meta.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
		check(g, c)
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

func exists(g Gomega, obj client.Object, ns, name string) bool {
	err := testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	return err == nil
}

func secretValue(g Gomega, ns, name string) string {
	sec := &corev1.Secret{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, sec)).To(Succeed())
	return string(sec.Data["password"])
}

// TestFaultGitServerDown: with the Git server gone, the GitRepository says
// so, the Kustomization keeps the last applied revision (nothing pruned),
// and both converge on the new commit once the server is back.
func TestFaultGitServerDown(t *testing.T) {
	needCluster(t)
	g := NewWithT(t)
	ns := newNamespace(t)
	id, r := newAgeKey(t)
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("r", "main")
	c1 := repo.Commit("one", map[string]string{
		"apps/db.yaml": encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-1")),
		"apps/a.yaml":  cmYAML(ns, "a"),
	})
	putAgeSecret(g, ns, "sops-age", id)
	createSource(t, g, ns, repo.URL())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "sops-age", nil))).To(Succeed())
	appliedAt(g, ns, c1, 90*time.Second)

	srv.Close()
	c2 := repo.Commit("two", map[string]string{"apps/a.yaml": "", "apps/b.yaml": cmYAML(ns, "b")})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	g.Eventually(func(g Gomega) {
		o := getRepo(g, ns, "my-secrets")
		c := apimeta.FindStatusCondition(o.Status.Conditions, meta.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(sourcev1.GitOperationFailedReason))
		g.Expect(c.Message).To(Or(ContainSubstring("connection refused"), ContainSubstring("connect")), c.Message)
		g.Expect(apimeta.IsStatusConditionTrue(o.Status.Conditions, sourcev1.FetchFailedCondition)).To(BeTrue())
		// The last good artifact is kept.
		g.Expect(o.Status.Artifact.Revision).To(Equal("main@sha1:" + c1))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	k := ksReady(g, ns, "apps")
	g.Expect(k.Status.LastAppliedRevision).To(Equal("main@sha1:" + c1))
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeTrue(), "pruned while the source was unreachable")

	srv.Restart()
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	appliedAt(g, ns, c2, 60*time.Second)
	g.Eventually(func(g Gomega) {
		g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeFalse())
		g.Expect(exists(g, &corev1.ConfigMap{}, ns, "b")).To(BeTrue())
		g.Expect(readyRevision(g, ns, "my-secrets")).To(Equal("main@sha1:" + c2))
	}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestFaultVaultDown: a new revision needs a Vault unwrap while Vault is
// down: DecryptionFailed naming the file, no token in the message, nothing
// pruned; Vault back at the same address: applied.
func TestFaultVaultDown(t *testing.T) {
	needCluster(t)
	g := NewWithT(t)
	ns := newNamespace(t)
	const token = "hvs.TOKEN-CANARY-3f0a"
	vsrv := vaulttest.New(token)
	defer func() { vsrv.Close() }()
	r, err := vault.NewRecipient(vsrv.URL+"/v1/sops/keys/firstkey", vault.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("r", "main")
	c1 := repo.Commit("one", map[string]string{
		"apps/db.yaml": encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-1")),
		"apps/a.yaml":  cmYAML(ns, "a"),
	})
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-hcvault"},
		StringData: map[string]string{"sops.vault-token": token}})).To(Succeed())
	createSource(t, g, ns, repo.URL())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "sops-hcvault", nil))).To(Succeed())
	appliedAt(g, ns, c1, 90*time.Second)

	// The next revision is encrypted (a new data key) while Vault is up,
	// committed after it is gone.
	next := encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-2"))
	vsrv.Close()
	c2 := repo.Commit("two", map[string]string{"apps/db.yaml": next, "apps/a.yaml": ""})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring("apps/db.yaml"))
		g.Expect(c.Message).To(ContainSubstring(strings.TrimPrefix(vsrv.URL, "http://")))
		g.Expect(c.Message).NotTo(ContainSubstring(token))
		g.Expect(c.Message).NotTo(ContainSubstring(faultCanary))
	})
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeTrue(), "pruned after a failed decryption")
	g.Expect(secretValue(g, ns, "db")).To(Equal(faultCanary + "-1"))

	g.Expect(vsrv.Restart()).To(Succeed())
	appliedAt(g, ns, c2, 60*time.Second)
	g.Expect(secretValue(g, ns, "db")).To(Equal(faultCanary + "-2"))
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeFalse())
}

// TestFaultDecryptionSecret: the decryption Secret deleted, then holding
// the wrong key; each is reported, blocks the prune, and recovers.
func TestFaultDecryptionSecret(t *testing.T) {
	needCluster(t)
	g := NewWithT(t)
	ns := newNamespace(t)
	id, r := newAgeKey(t)
	wrong, _ := newAgeKey(t)
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("r", "main")
	c1 := repo.Commit("one", map[string]string{
		"apps/db.yaml": encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-1")),
		"apps/a.yaml":  cmYAML(ns, "a"),
		"apps/b.yaml":  cmYAML(ns, "b"),
	})
	putAgeSecret(g, ns, "sops-age", id)
	createSource(t, g, ns, repo.URL())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "sops-age", nil))).To(Succeed())
	appliedAt(g, ns, c1, 90*time.Second)

	// Deleted.
	g.Expect(testClient.Delete(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-age"}})).To(Succeed())
	c2 := repo.Commit("two", map[string]string{
		"apps/db.yaml": encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-2")),
		"apps/a.yaml":  "",
	})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring("'" + ns + "/sops-age'"))
		g.Expect(c.Message).To(ContainSubstring("not found"))
	})
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeTrue(), "pruned without a decryption Secret")
	putAgeSecret(g, ns, "sops-age", id)
	appliedAt(g, ns, c2, 60*time.Second)
	g.Expect(secretValue(g, ns, "db")).To(Equal(faultCanary + "-2"))
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeFalse())

	// The wrong key.
	putAgeSecret(g, ns, "sops-age", wrong)
	c3 := repo.Commit("three", map[string]string{
		"apps/db.yaml": encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-3")),
		"apps/b.yaml":  "",
	})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring("apps/db.yaml"))
		g.Expect(c.Message).To(ContainSubstring(id.Recipient().String()), "the message names the key tried")
		g.Expect(c.Message).NotTo(ContainSubstring(faultCanary))
		g.Expect(c.Message).NotTo(ContainSubstring("AGE-SECRET-KEY"))
	})
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "b")).To(BeTrue(), "pruned after a failed decryption")
	g.Expect(secretValue(g, ns, "db")).To(Equal(faultCanary + "-2"))
	putAgeSecret(g, ns, "sops-age", id)
	appliedAt(g, ns, c3, 60*time.Second)
	g.Expect(secretValue(g, ns, "db")).To(Equal(faultCanary + "-3"))
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "b")).To(BeFalse())
}

// manyCMs returns n ConfigMaps prefix-0..n-1 as files under apps/.
func manyCMs(ns, prefix string, n int) map[string]string {
	files := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		files["apps/"+name+".yaml"] = cmYAML(ns, name)
	}
	return files
}

func countCMs(ns, prefix string) (int, error) {
	var list corev1.ConfigMapList
	if err := testClient.List(testCtx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	n := 0
	for _, cm := range list.Items {
		if strings.HasPrefix(cm.Name, prefix+"-") {
			n++
		}
	}
	return n, nil
}

// waitPartial polls until some but not all of prefix's objects exist
// (true), or gives up (false: the apply was too quick to catch).
func waitPartial(ns, prefix string, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := countCMs(ns, prefix); err == nil && c > 0 {
			return c < n
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func replaceFiles(old, new map[string]string) map[string]string {
	out := map[string]string{}
	for p := range old {
		out[p] = ""
	}
	for p, c := range new {
		out[p] = c
	}
	return out
}

// TestFaultAPIServerStoppedMidApply stops the shared API server while a
// revision of many objects is being applied (not parallel: the whole
// package waits for it). The retry finishes the apply and the prune.
func TestFaultAPIServerStoppedMidApply(t *testing.T) {
	needCluster(t)
	g := NewWithT(t)
	ns := newNamespace(t)
	const n = 80
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("r", "main")
	rev1 := manyCMs(ns, "one", n)
	c1 := repo.Commit("one", rev1)
	createSource(t, g, ns, repo.URL())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "", nil))).To(Succeed())
	appliedAt(g, ns, c1, 120*time.Second)

	c2 := repo.Commit("two", replaceFiles(rev1, manyCMs(ns, "two", n)))
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	caught := waitPartial(ns, "two", n, 60*time.Second)
	testEnv.StopAPIServer()
	t.Logf("API server stopped mid-apply: %v", caught)
	time.Sleep(3 * time.Second)
	g.Expect(testEnv.StartAPIServer(testCtx)).To(Succeed())

	appliedAt(g, ns, c2, 120*time.Second)
	g.Eventually(func(g Gomega) {
		g.Expect(countCMs(ns, "two")).To(Equal(n))
		g.Expect(countCMs(ns, "one")).To(Equal(0))
		g.Expect(getKS(g, ns, "apps").Status.Inventory.Entries).To(HaveLen(n))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

// isolatedLabel marks objects the shared test manager ignores (its watch
// selector excludes it), for tests that run a manager of their own.
const isolatedLabel = "lacre.test/isolated"

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startIsolated runs a manager like NewManager's, for objects labelled
// isolatedLabel only, with debug logs written to logs. It returns a
// function that stops it (a killed controller) and waits until it has.
func startIsolated(t *testing.T, logs io.Writer) (stop func()) {
	t.Helper()
	store, err := artifact.NewStore(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	url, stopStore, err := store.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store.SetBaseURL(url)
	sel, _ := labels.Parse(isolatedLabel + "=true")
	skip := true
	mgr, err := ctrl.NewManager(restConfig(testEnv), ctrl.Options{
		Scheme:                 NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 zap.New(zap.WriteTo(logs), zap.UseDevMode(true)),
		Controller:             config.Controller{SkipNameValidation: &skip},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&sourcev1.GitRepository{}:    {Label: sel},
			&kustomizev1.Kustomization{}: {Label: sel},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	src := &GitRepositoryReconciler{Client: mgr.GetClient(), Storage: store, Recorder: mgr.GetEventRecorderFor("lacre-source-controller")}
	if err := src.SetupWithManager(mgr, 1); err != nil {
		t.Fatal(err)
	}
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		t.Fatal(err)
	}
	ks := &KustomizationReconciler{Config: mgr.GetConfig(), Direct: direct, Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
		Fetcher: &artifact.Fetcher{}, Recorder: mgr.GetEventRecorderFor("lacre-kustomize-controller"), KeyCache: &keys.Cache{}}
	if err := ks.SetupWithManager(context.Background(), mgr, 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Logf("isolated manager: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			stopStore()
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestFaultControllerKilledMidReconcile kills a controller while it applies
// a revision and starts a new one (with empty artifact storage, as a new
// pod): it converges, finishing the apply and pruning the old revision.
func TestFaultControllerKilledMidReconcile(t *testing.T) {
	needCluster(t)
	g := NewWithT(t)
	ns := newNamespace(t)
	const n = 80
	lbl := map[string]string{isolatedLabel: "true"}
	id, r := newAgeKey(t)
	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("r", "main")
	rev1 := manyCMs(ns, "one", n)
	rev1["apps/db.yaml"] = encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-1"))
	c1 := repo.Commit("one", rev1)
	putAgeSecret(g, ns, "sops-age", id)
	var logs syncBuffer
	stop := startIsolated(t, &logs)
	src := gitRepo(ns, "my-secrets", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Labels = lbl
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "sops-age", lbl))).To(Succeed())
	appliedAt(g, ns, c1, 120*time.Second)

	rev2 := manyCMs(ns, "two", n)
	rev2["apps/db.yaml"] = encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-2"))
	delete(rev1, "apps/db.yaml")
	c2 := repo.Commit("two", replaceFiles(rev1, rev2))
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	caught := waitPartial(ns, "two", n, 60*time.Second)
	stop()
	half, _ := countCMs(ns, "two")
	t.Logf("killed mid-apply: %v (%d of %d applied)", caught, half, n)
	g.Expect(getKS(g, ns, "apps").Status.LastAppliedRevision).To(Equal("main@sha1:"+c1), "a killed reconcile recorded its revision")

	startIsolated(t, &logs)
	appliedAt(g, ns, c2, 120*time.Second)
	g.Eventually(func(g Gomega) {
		g.Expect(countCMs(ns, "two")).To(Equal(n))
		g.Expect(countCMs(ns, "one")).To(Equal(0))
		g.Expect(getKS(g, ns, "apps").Status.Inventory.Entries).To(HaveLen(n + 1))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(secretValue(g, ns, "db")).To(Equal(faultCanary + "-2"))
	// The shared manager left these objects alone.
	g.Expect(getKS(g, ns, "apps").Labels).To(HaveKeyWithValue(isolatedLabel, "true"))
	g.Expect(logs.String()).NotTo(ContainSubstring(faultCanary))
}
