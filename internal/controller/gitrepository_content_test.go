package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
)

func artifactOf(g Gomega, ns, name string) artifact.Files {
	obj := getRepo(g, ns, name)
	g.Expect(obj.Status.Artifact).NotTo(BeNil())
	files, err := (&artifact.Fetcher{}).Fetch(testCtx, obj.Status.Artifact.URL, obj.Status.Artifact.Digest)
	g.Expect(err).NotTo(HaveOccurred())
	return files
}

// spec.sparseCheckout: only the listed directories are in the artifact;
// a directory missing from the commit fails the fetch, as in Flux.
func TestGitRepositorySparseCheckout(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "sparse")
	c1 := repo.Commit("one", map[string]string{"apps/a.yaml": "a: 1\n", "infra/b.yaml": "b: 1\n", "other/c.yaml": "c: 1\n", "root.yaml": "r: 1\n"})
	obj := gitRepo(ns, "sparse", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	obj.Spec.SparseCheckout = []string{"./apps", "infra"}
	g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(readyRevision(g, ns, "sparse")).To(Equal("main@sha1:" + c1))
		g.Expect(getRepo(g, ns, "sparse").Status.ObservedSparseCheckout).To(Equal([]string{"./apps", "infra"}))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(artifactOf(g, ns, "sparse")).To(SatisfyAll(HaveLen(2), HaveKey("apps/a.yaml"), HaveKey("infra/b.yaml")))

	missing := gitRepo(ns, "missing", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	missing.Spec.SparseCheckout = []string{"apps", "nope"}
	g.Expect(testClient.Create(testCtx, missing)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "missing").Status.Conditions, sourcev1.FetchFailedCondition)
		g.Expect(c.Message).To(ContainSubstring(`sparse checkout dir "nope" does not exist`))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}

// spec.include: a second repository's folder is copied into toPath; the
// including repository waits for the included one's artifact and is
// rebuilt when that artifact changes.
func TestGitRepositoryInclude(t *testing.T) {
	g, ns := clusterTest(t)
	main := newGitRepo(t, "incl-main")
	cm := main.Commit("main", map[string]string{"deploy/app.yaml": "app: 1\n", "vendor/old.yaml": "old\n"})
	lib := newGitRepo(t, "incl-lib")
	lib.Commit("lib", map[string]string{"charts/x/x.yaml": "x: 1\n", "README.md": "readme\n"})

	obj := gitRepo(ns, "main", main.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	obj.Spec.Include = []sourcev1.GitRepositoryInclude{{GitRepositoryRef: meta.LocalObjectReference{Name: "lib"}, FromPath: "charts", ToPath: "vendor/charts"}}
	g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "main").Status.Conditions, sourcev1.IncludeUnavailableCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("NotFound"))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	g.Expect(testClient.Create(testCtx, gitRepo(ns, "lib", lib.URL(), &sourcev1.GitRepositoryRef{Branch: "main"}))).To(Succeed())
	requestReconcile(g, getRepo(g, ns, "main"))
	g.Eventually(func(g Gomega) {
		got := getRepo(g, ns, "main")
		g.Expect(readyRevision(g, ns, "main")).To(Equal("main@sha1:" + cm))
		g.Expect(got.Status.IncludedArtifacts).To(HaveLen(1))
		g.Expect(got.Status.IncludedArtifacts[0].Digest).To(Equal(getRepo(g, ns, "lib").Status.Artifact.Digest))
		g.Expect(got.Status.ObservedInclude).To(Equal(obj.Spec.Include))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	files := artifactOf(g, ns, "main")
	g.Expect(files).To(SatisfyAll(HaveKey("deploy/app.yaml"), HaveKey("vendor/old.yaml"), HaveKey("vendor/charts/x/x.yaml")))
	g.Expect(files).NotTo(HaveKey("vendor/charts/README.md"))
	digest := getRepo(g, ns, "main").Status.Artifact.Digest

	// A new commit of the included repository rebuilds the artifact: same
	// revision (the including commit), new digest.
	lib.Commit("lib 2", map[string]string{"charts/x/x.yaml": "x: 2\n"})
	requestReconcile(g, getRepo(g, ns, "lib"))
	g.Eventually(func(g Gomega) {
		got := getRepo(g, ns, "main")
		g.Expect(got.Status.Artifact.Revision).To(Equal("main@sha1:" + cm))
		g.Expect(got.Status.Artifact.Digest).NotTo(Equal(digest))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(string(artifactOf(g, ns, "main")["vendor/charts/x/x.yaml"])).To(Equal("x: 2\n"))
}

// Fields lacre cannot honour here are refused: Ready=False, Stalled=True,
// a reason and message naming the field.
func TestGitRepositoryUnsupportedFields(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "unsupported")
	repo.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	for name, set := range map[string]func(*sourcev1.GitRepository){
		"azure":  func(o *sourcev1.GitRepository) { o.Spec.Provider = sourcev1.GitProviderAzure },
		"github": func(o *sourcev1.GitRepository) { o.Spec.Provider = sourcev1.GitProviderGitHub },
		"aws-sa": func(o *sourcev1.GitRepository) {
			o.Spec.Provider, o.Spec.ServiceAccountName = sourcev1.GitProviderAWS, "sa"
		},
	} {
		obj := gitRepo(ns, name, repo.URL(), nil)
		set(obj)
		g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	}
	for name, field := range map[string]string{"azure": "spec.provider", "github": "spec.provider", "aws-sa": "spec.provider"} {
		g.Eventually(func(g Gomega) {
			conds := getRepo(g, ns, name).Status.Conditions
			c := condition(g, conds, meta.StalledCondition)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(UnsupportedFieldReason))
			g.Expect(c.Message).To(ContainSubstring(field))
			g.Expect(condition(g, conds, meta.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), name)
	}
	// serviceAccountName without a cloud provider: refused by the schema (CEL), as in Flux.
	bad := gitRepo(ns, "sa", repo.URL(), nil)
	bad.Spec.ServiceAccountName = "sa"
	g.Expect(testClient.Create(testCtx, bad)).To(MatchError(ContainSubstring("serviceAccountName can only be set")))
}
