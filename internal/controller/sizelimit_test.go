package controller

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/gittest"
)

// TestGitRepositoryArtifactTooLarge: a repository of twelve 60 MB files of
// zeros (each under the per-file limit, a pack of well under a megabyte)
// fails with Ready=False, ArtifactTooLarge, naming the limit, with the
// heap growing by less than half the content (the twelve files are one
// 60 MB blob, which go-git inflates; the tree's 720 MB are refused from
// its entries), and another GitRepository in the same manager still
// becomes Ready.
func TestGitRepositoryArtifactTooLarge(t *testing.T) {
	g, ns := clusterTest(t)
	srv := gittest.New(t, "", "")
	big := srv.NewRepo("zeros", "main")
	for i := 0; i < 12; i++ {
		// Sparse files: the test holds none of the 720 MB.
		f, err := os.Create(filepath.Join(big.Work, fmt.Sprintf("z%02d.yaml", i)))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(f.Truncate(60e6)).To(Succeed())
		g.Expect(f.Close()).To(Succeed())
	}
	big.Commit("zeros", nil)
	small := srv.NewRepo("small", "main")
	c := small.Commit("one", map[string]string{"cm.yaml": "kind: ConfigMap\n"})

	// The peak heap of the whole test process while the checkout runs.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	g.Expect(testClient.Create(testCtx, gitRepo(ns, "zeros", big.URL(), &sourcev1.GitRepositoryRef{Branch: "main"}))).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "zeros").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(sourcev1.ArtifactTooLargeReason))
		g.Expect(c.Message).To(ContainSubstring("checkout exceeds 256 MiB"))
	}, 90*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(peak.Load()-base).To(BeNumerically("<", 360e6), "heap growth while refusing 720 MB")
	t.Logf("heap %d MiB before, peak %d MiB; %s", base>>20, peak.Load()>>20, condition(g, getRepo(g, ns, "zeros").Status.Conditions, meta.ReadyCondition).Message)

	g.Expect(testClient.Create(testCtx, gitRepo(ns, "small", small.URL(), &sourcev1.GitRepositoryRef{Branch: "main"}))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(readyRevision(g, ns, "small")).To(Equal("main@sha1:" + c))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}

// TestArtifactBudgetConcurrent: with --concurrent 4 and a byte budget
// (--max-concurrent-artifact-size) that holds about two checkouts, four
// GitRepositories of incompressible content and the four Kustomizations
// that apply them all become Ready: reconciles that find the budget spent
// wait, none fails for it; the budget's own accounting never exceeds its
// size and returns to zero.
func TestArtifactBudgetConcurrent(t *testing.T) {
	g, ns := clusterTest(t)
	const n = 4
	lbl := map[string]string{isolatedLabel: "true"}
	srv := gittest.New(t, "", "")
	for i := 0; i < n; i++ {
		data := make([]byte, 96<<10)
		rand.Read(data)
		repo := srv.NewRepo(fmt.Sprintf("r%d", i), "main")
		repo.Commit("random", map[string]string{"cm.yaml": fmt.Sprintf(
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm%d\n  namespace: %s\nbinaryData:\n  data: %s\n",
			i, ns, base64.StdEncoding.EncodeToString(data))})
		src := gitRepo(ns, repo.Name, repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
		src.Labels = lbl
		g.Expect(testClient.Create(testCtx, src)).To(Succeed())
		ks := newKS(ns, repo.Name, "./")
		ks.Labels, ks.Spec.SourceRef.Name = lbl, repo.Name
		g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	}
	mgr, _ := startIsolatedWith(t, io.Discard, Options{Concurrent: 4, ArtifactBudget: 1 << 20})
	g.Expect(mgr.Budget.Size()).To(Equal(int64(1 << 20)))
	for i := 0; i < n; i++ {
		g.Eventually(func(g Gomega) {
			ksReady(g, ns, fmt.Sprintf("r%d", i))
			getCM(g, ns, fmt.Sprintf("cm%d", i))
		}, 120*time.Second, 200*time.Millisecond).Should(Succeed())
	}
	t.Logf("budget peak %d KiB of %d KiB, %d reconciles waited", mgr.Budget.Peak()>>10, mgr.Budget.Size()>>10, mgr.Budget.Retries())
	g.Expect(mgr.Budget.Peak()).To(And(BeNumerically(">", 384<<10), BeNumerically("<=", mgr.Budget.Size())))
	g.Eventually(mgr.Budget.Used).Should(BeZero())
}
