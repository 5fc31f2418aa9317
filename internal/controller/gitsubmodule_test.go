package controller

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/gittest"
)

// spec.recurseSubmodules: a repository with a submodule (absolute URL)
// holding a nested one (relative URL) on the local git server gives an
// artifact with every level's files, revision the parent commit, and
// status.observedRecurseSubmodules; turning it off rebuilds without them.
// A submodule at a file:// URL is refused naming it (a sparse checkout
// that leaves it out still works); one over the checkout's limits is
// refused with ArtifactTooLarge.
func TestGitRepositorySubmodules(t *testing.T) {
	g, ns := clusterTest(t)
	srv := gittest.New(t, "", "")
	leaf := srv.NewRepo("leaf", "main")
	leafC := leaf.Commit("leaf", map[string]string{"leaf.yaml": "leaf: 1\n"})
	lib := srv.NewRepo("lib", "main")
	lib.Commit("lib", map[string]string{"lib.yaml": "lib: 1\n"})
	libC := lib.AddSubmodule("leaf", "../leaf.git", leafC)
	app := srv.NewRepo("app", "main")
	app.Commit("app", map[string]string{"deploy/app.yaml": "app: 1\n"})
	appC := app.AddSubmodule("lib", lib.URL(), libC)

	obj := gitRepo(ns, "subm", app.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	obj.Spec.RecurseSubmodules = true
	g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(readyRevision(g, ns, "subm")).To(Equal("main@sha1:" + appC))
		g.Expect(getRepo(g, ns, "subm").Status.ObservedRecurseSubmodules).To(BeTrue())
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	files := artifactOf(g, ns, "subm")
	g.Expect(files).To(SatisfyAll(HaveKey("deploy/app.yaml"), HaveKey("lib/lib.yaml"), HaveKey("lib/leaf/leaf.yaml")))

	got := getRepo(g, ns, "subm")
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.RecurseSubmodules = false
	g.Expect(testClient.Patch(testCtx, got, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := getRepo(g, ns, "subm")
		g.Expect(got.Status.ObservedRecurseSubmodules).To(BeFalse())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(artifactOf(g, ns, "subm")).NotTo(HaveKey("lib/lib.yaml"))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	hostile := srv.NewRepo("hostile", "main")
	hostile.Commit("app", map[string]string{"deploy/app.yaml": "app: 1\n"})
	hostile.AddSubmodule("lib", "../lib.git", libC)
	hostile.AddSubmodule("evil", "file:///etc", libC)
	// A submodule with a file over the per-file limit (a sparse file: the
	// test holds none of it; the pack is small).
	big := srv.NewRepo("big", "main")
	f, err := os.Create(filepath.Join(big.Work, "zeros.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.Truncate(65 << 20)).To(Succeed())
	g.Expect(f.Close()).To(Succeed())
	bigC := big.Commit("zeros", nil)
	withBig := srv.NewRepo("with-big", "main")
	withBig.Commit("app", map[string]string{"app.yaml": "app: 1\n"})
	withBig.AddSubmodule("big", "../big.git", bigC)

	for name, spec := range map[string]func(*sourcev1.GitRepository){
		"hostile":        func(o *sourcev1.GitRepository) {},
		"hostile-sparse": func(o *sourcev1.GitRepository) { o.Spec.SparseCheckout = []string{"lib"} },
		"with-big":       func(o *sourcev1.GitRepository) { o.Spec.URL = withBig.URL() },
	} {
		o := gitRepo(ns, name, hostile.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
		o.Spec.RecurseSubmodules = true
		spec(o)
		g.Expect(testClient.Create(testCtx, o)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "hostile").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(sourcev1.GitOperationFailedReason))
		g.Expect(c.Message).To(ContainSubstring(`submodule refused: "evil": invalid repository URL "file:///etc": scheme must be http, https or ssh`))
		g.Expect(condition(g, getRepo(g, ns, "hostile").Status.Conditions, sourcev1.FetchFailedCondition).Status).To(Equal(metav1.ConditionTrue))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(readyRevision(g, ns, "hostile-sparse")).To(HavePrefix("main@sha1:"))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(artifactOf(g, ns, "hostile-sparse")).To(SatisfyAll(HaveLen(2), HaveKey("lib/lib.yaml"), HaveKey("lib/leaf/leaf.yaml")))
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "with-big").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(sourcev1.ArtifactTooLargeReason))
		g.Expect(c.Message).To(SatisfyAll(ContainSubstring(`submodule "big"`), ContainSubstring("more than 64 MiB")))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}
