package controller

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/internal/testsupport"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

// Fault tests: each fault is reported in a condition that names its cause
// (and no secret), nothing is pruned while a revision cannot be built or
// decrypted, and the controller converges once the fault clears.

const faultCanary = "fault-CANARY-91b7"

// TestFaultGitServerDown: with the Git server gone, the GitRepository says
// so, the Kustomization keeps the last applied revision (nothing pruned),
// and both converge on the new commit once the server is back.
func TestFaultGitServerDown(t *testing.T) {
	g, ns := clusterTest(t)
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
		c := condition(g, o.Status.Conditions, meta.ReadyCondition)
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
	g, ns := clusterTest(t)
	const token = "hvs.TOKEN-CANARY-3f0a"
	vsrv := vaulttest.New(token)
	defer func() { vsrv.Close() }()
	r, err := vault.NewRecipient(vsrv.URL+"/v1/sops/keys/firstkey", vault.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{
		"apps/db.yaml": encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-1")),
		"apps/a.yaml":  cmYAML(ns, "a"),
	})
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-hcvault"},
		StringData: map[string]string{"sops.vault-token": token, "sops.vault-address": vsrv.URL}})).To(Succeed())
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
	g, ns := clusterTest(t)
	id, r := newAgeKey(t)
	wrong, _ := newAgeKey(t)
	repo := newGitRepo(t, "r")
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
	g, ns := clusterTest(t)
	const n = 80
	repo := newGitRepo(t, "r")
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

// startIsolated runs a manager of its own (NewManager, with empty artifact
// storage as a new pod has) for objects labelled isolatedLabel only, and
// copies the controllers' debug logs to logs while the test runs. It
// returns a function that stops it (a killed controller) and waits until
// it has.
func startIsolated(t *testing.T, logs io.Writer) (stop func()) {
	t.Helper()
	_, stop = startIsolatedWith(t, logs, Options{Concurrent: 1})
	return stop
}

// startIsolatedWith is startIsolated with opts (Config and WatchSelector
// set here), returning the manager too.
func startIsolatedWith(t *testing.T, logs io.Writer, opts Options) (mgr *Manager, stop func()) {
	t.Helper()
	opts.Config, opts.WatchSelector = restConfig(testEnv), isolatedLabel+"=true"
	mgr, err := NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	tapLogs(t, logs)
	ctx, cancel := context.WithCancel(testCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Run(ctx); err != nil {
			t.Logf("isolated manager: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return mgr, stop
}

// TestFaultControllerKilledMidReconcile kills a controller while it applies
// a revision and starts a new one (with empty artifact storage, as a new
// pod): it converges, finishing the apply and pruning the old revision.
func TestFaultControllerKilledMidReconcile(t *testing.T) {
	g, ns := clusterTest(t)
	const n = 80
	lbl := map[string]string{isolatedLabel: "true"}
	id, r := newAgeKey(t)
	repo := newGitRepo(t, "r")
	rev1 := manyCMs(ns, "one", n)
	rev1["apps/db.yaml"] = encryptFor(t, r, secretYAML(ns, "db", faultCanary+"-1"))
	c1 := repo.Commit("one", rev1)
	putAgeSecret(g, ns, "sops-age", id)
	var logs testsupport.SyncBuffer
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
