package controller

import (
	"fmt"
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
