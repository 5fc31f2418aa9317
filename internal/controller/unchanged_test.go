package controller

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/testsupport"
)

// startCounted runs a manager of its own for the objects sel selects,
// every API request it makes counted by cnt.
func startCounted(t *testing.T, sel string, cnt *testsupport.RequestCounter) *Manager {
	t.Helper()
	cfg := restConfig(testEnv)
	cfg.WrapTransport = cnt.Wrap
	mgr, err := NewManager(Options{Config: cfg, Concurrent: 2, WatchSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := mgr.Run(ctx); err != nil {
			t.Logf("manager %q: %v", sel, err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return mgr
}

// settled waits until cnt has counted nothing new (watches aside) for a
// second, and returns its counts.
func settled(g Gomega, cnt *testsupport.RequestCounter) map[string]int64 {
	var s map[string]int64
	g.Eventually(func(g Gomega) {
		s = cnt.Snapshot()
		g.Consistently(cnt.Snapshot, time.Second, 100*time.Millisecond).Should(Equal(s))
	}, 60*time.Second, 10*time.Millisecond).Should(Succeed())
	return s
}

// requests sums the counts of d (watches aside) and those of the classes
// that contain any of the words.
func requests(d map[string]int64, words ...string) (all, some int64) {
	for k, v := range d {
		if k == "watch" {
			continue
		}
		all += v
		for _, w := range words {
			if strings.Contains(k, w) {
				some += v
				break
			}
		}
	}
	return all, some
}

// TestUnchangedBuildAppliesNothing: a Ready Kustomization asked to
// reconcile with nothing changed costs at most two API requests (the
// decryption Secret, the status write with the handled-request stamp), no
// key unwrap and no object write; a new revision that leaves its build
// unchanged is recorded without a dry run or an apply; the next
// spec.interval corrects drift.
func TestUnchangedBuildAppliesNothing(t *testing.T) {
	g, ns := clusterTest(t)
	// A label value of its own: earlier tests' isolated objects stay.
	lbl := map[string]string{isolatedLabel: ns}
	id, r := newAgeKey(t)
	files := map[string]string{
		"apps/cm.yaml":     cmYAML(ns, "app"),
		"apps/db.yaml":     encryptFor(t, r, secretYAML(ns, "db", "s3cret")),
		"elsewhere/a.yaml": cmYAML(ns, "elsewhere"),
	}
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", files)
	putAgeSecret(g, ns, "sops-age", id)
	cnt := &testsupport.RequestCounter{}
	mgr := startCounted(t, isolatedLabel+"="+ns, cnt)
	src := gitRepo(ns, "my-secrets", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Labels = lbl
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "sops-age", lbl))).To(Succeed())
	appliedAt(g, ns, c1, 60*time.Second)

	// A requested reconcile, nothing changed.
	before, unwraps := settled(g, cnt), mgr.Kustomizations.Unwraps()
	reconcileHandled(g, ns, "apps", true)
	d := testsupport.DiffCounts(before, settled(g, cnt))
	all, writes := requests(d, testsupport.ClassObject, testsupport.ClassDryRun, testsupport.ClassEvent)
	g.Expect(all).To(BeNumerically("<=", 2), "requests of a no-change reconcile: %v", d)
	g.Expect(writes).To(BeZero(), "%v", d)
	g.Expect(d).To(HaveKeyWithValue("patch "+testsupport.ClassKustomizationStatus, int64(1)))
	g.Expect(mgr.Kustomizations.Unwraps()).To(Equal(unwraps))

	// A new revision that changes another path: recorded, nothing applied.
	files["elsewhere/a.yaml"] = cmYAML(ns, "elsewhere-2")
	c2 := repo.Commit("two", files)
	before = settled(g, cnt)
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	appliedAt(g, ns, c2, 60*time.Second)
	d = testsupport.DiffCounts(before, settled(g, cnt))
	_, applies := requests(d, testsupport.ClassObject, testsupport.ClassDryRun)
	g.Expect(applies).To(BeZero(), "an unchanged build applied: %v", d)
	g.Expect(mgr.Kustomizations.Unwraps()).To(Equal(unwraps))
	k := getKS(g, ns, "apps")
	g.Expect(k.Status.History).NotTo(BeEmpty())
	g.Expect(k.Status.History[0].Metadata).To(HaveKeyWithValue("revision", "main@sha1:"+c2))

	// Drift: a request does not correct it (the build is unchanged); the
	// interval does.
	cm := getCM(g, ns, "app")
	cm.Data["a"] = "drifted"
	g.Expect(testClient.Update(testCtx, cm)).To(Succeed())
	reconcileHandled(g, ns, "apps", true)
	g.Expect(getCM(g, ns, "app").Data).To(HaveKeyWithValue("a", "drifted"))
	k = getKS(g, ns, "apps")
	k.Spec.Interval = metav1.Duration{Duration: 2 * time.Second}
	g.Expect(testClient.Update(testCtx, k)).To(Succeed()) // a new generation: applied in full
	g.Eventually(func(g Gomega) {
		g.Expect(getCM(g, ns, "app").Data).To(HaveKeyWithValue("a", "b"))
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	cm = getCM(g, ns, "app")
	cm.Data["a"] = "drifted again"
	g.Expect(testClient.Update(testCtx, cm)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getCM(g, ns, "app").Data).To(HaveKeyWithValue("a", "b"))
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
}

// TestShardsSplitAFleet: two managers with Flux's sharding selectors
// split the Kustomizations by sharding.fluxcd.io/key; the one
// GitRepository is reconciled by the shard it is labelled for and read by
// both.
func TestShardsSplitAFleet(t *testing.T) {
	g, ns := clusterTest(t)
	const key = "sharding.fluxcd.io/key"
	repo := newGitRepo(t, "r")
	files := map[string]string{}
	names := []string{"a0", "a1", "b0", "b1"}
	for _, n := range names {
		files["apps/"+n+"/cm.yaml"] = cmYAML(ns, n)
	}
	c1 := repo.Commit("one", files)
	var cnt1, cnt2 testsupport.RequestCounter
	cnt1.Keep, cnt2.Keep = true, true
	startCounted(t, isolatedLabel+"="+ns+","+key+" in (shard1)", &cnt1)
	startCounted(t, isolatedLabel+"="+ns+",!"+key, &cnt2)
	src := gitRepo(ns, "my-secrets", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Labels = map[string]string{isolatedLabel: ns, key: "shard1"}
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	for _, n := range names {
		ks := newKS(ns, n, "./apps/"+n)
		ks.Labels = map[string]string{isolatedLabel: ns}
		if strings.HasPrefix(n, "a") {
			ks.Labels[key] = "shard1"
		}
		g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		for _, n := range names {
			g.Expect(ksReady(g, ns, n).Status.LastAppliedRevision).To(Equal("main@sha1:" + c1))
			getCM(g, ns, n)
		}
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	wrote := func(c *testsupport.RequestCounter, what string) bool {
		for _, l := range c.Log() {
			if strings.HasPrefix(l, "PATCH ") && strings.Contains(l, "/namespaces/"+ns+"/"+what+"/status") {
				return true
			}
		}
		return false
	}
	for _, n := range names {
		shard1 := strings.HasPrefix(n, "a")
		g.Expect(wrote(&cnt1, "kustomizations/"+n)).To(Equal(shard1), n)
		g.Expect(wrote(&cnt2, "kustomizations/"+n)).To(Equal(!shard1), n)
	}
	g.Expect(wrote(&cnt1, "gitrepositories/my-secrets")).To(BeTrue())
	g.Expect(wrote(&cnt2, "gitrepositories/my-secrets")).To(BeFalse())
}
