package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/gittest"
)

func TestGitRepositoryRefsAndAuth(t *testing.T) {
	g, ns := clusterTest(t)
	srv := gittest.New(t, "git", "s3cret-pass")
	repo := srv.NewRepo("app", "main")
	c1 := repo.Commit("one", map[string]string{"deploy/app.yaml": "kind: ConfigMap\n", ".sops.yaml": "creation_rules: []\n", "logo.png": "x"})
	repo.Tag("v1.0.0")
	c2 := repo.Commit("two", map[string]string{"deploy/app.yaml": "kind: ConfigMap # 2\n"})
	repo.Tag("v1.1.0")

	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}, StringData: map[string]string{"username": "git", "password": "s3cret-pass"}}
	g.Expect(testClient.Create(testCtx, sec)).To(Succeed())
	bad := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad"}, StringData: map[string]string{"username": "git", "password": "wrong-pass"}}
	g.Expect(testClient.Create(testCtx, bad)).To(Succeed())

	cases := []struct {
		name string
		ref  *sourcev1.GitRepositoryRef
		want string
	}{
		{"branch", &sourcev1.GitRepositoryRef{Branch: "main"}, "main@sha1:" + c2},
		{"tag", &sourcev1.GitRepositoryRef{Tag: "v1.0.0"}, "v1.0.0@sha1:" + c1},
		{"semver", &sourcev1.GitRepositoryRef{SemVer: "<1.1.0"}, "v1.0.0@sha1:" + c1},
		{"commit", &sourcev1.GitRepositoryRef{Commit: c1}, "sha1:" + c1},
	}
	for _, tc := range cases {
		obj := gitRepo(ns, tc.name, repo.URL(), tc.ref)
		obj.Spec.SecretRef = &meta.LocalObjectReference{Name: "auth"}
		g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	}
	for _, tc := range cases {
		g.Eventually(func(g Gomega) {
			g.Expect(readyRevision(g, ns, tc.name)).To(Equal(tc.want))
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), tc.name)
	}

	// The artifact is served, verified, and follows the ignore rules.
	obj := getRepo(g, ns, "branch")
	files, err := (&artifact.Fetcher{}).Fetch(testCtx, obj.Status.Artifact.URL, obj.Status.Artifact.Digest)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).To(HaveKey("deploy/app.yaml"))
	g.Expect(files).NotTo(HaveKey(".sops.yaml"))
	g.Expect(files).NotTo(HaveKey("logo.png"))
	g.Expect(apimeta.IsStatusConditionTrue(obj.Status.Conditions, sourcev1.ArtifactInStorageCondition)).To(BeTrue())

	// The same commit gives the same digest in another object.
	twin := gitRepo(ns, "twin", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	twin.Spec.SecretRef = &meta.LocalObjectReference{Name: "auth"}
	g.Expect(testClient.Create(testCtx, twin)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(readyRevision(g, ns, "twin")).To(Equal("main@sha1:" + c2))
		g.Expect(getRepo(g, ns, "twin").Status.Artifact.Digest).To(Equal(obj.Status.Artifact.Digest))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	// Wrong password: Ready=False, AuthenticationFailed, no password in the message.
	wrong := gitRepo(ns, "wrong", repo.URL(), nil)
	wrong.Spec.SecretRef = &meta.LocalObjectReference{Name: "bad"}
	g.Expect(testClient.Create(testCtx, wrong)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "wrong").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(sourcev1.AuthenticationFailedReason))
		g.Expect(c.Message).NotTo(ContainSubstring("wrong-pass"))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	// Unknown branch and a missing secret are reported, not fatal.
	nob := gitRepo(ns, "nobranch", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "nope"})
	nob.Spec.SecretRef = &meta.LocalObjectReference{Name: "auth"}
	g.Expect(testClient.Create(testCtx, nob)).To(Succeed())
	nos := gitRepo(ns, "nosecret", repo.URL(), nil)
	nos.Spec.SecretRef = &meta.LocalObjectReference{Name: "missing"}
	g.Expect(testClient.Create(testCtx, nos)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "nobranch").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Message).To(ContainSubstring(`branch "nope"`))
		c = condition(g, getRepo(g, ns, "nosecret").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Message).To(ContainSubstring("not found"))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}

func TestGitRepositoryUpdatesAndRequests(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "app")
	c1 := repo.Commit("one", map[string]string{"a.yaml": "a: 1\n", "tmp/x.yaml": "x\n"})
	obj := gitRepo(ns, "repo", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(readyRevision(g, ns, "repo")).To(Equal("main@sha1:" + c1)) }, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	// A new commit is picked up at once with the requestedAt annotation.
	c2 := repo.Commit("two", map[string]string{"a.yaml": "a: 2\n"})
	stamp := time.Now().Format(time.RFC3339Nano)
	cur := getRepo(g, ns, "repo")
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Annotations = map[string]string{meta.ReconcileRequestAnnotation: stamp}
	g.Expect(testClient.Patch(testCtx, cur, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(readyRevision(g, ns, "repo")).To(Equal("main@sha1:" + c2))
		g.Expect(getRepo(g, ns, "repo").Status.LastHandledReconcileAt).To(Equal(stamp))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	// spec.ignore replaces the defaults.
	cur = getRepo(g, ns, "repo")
	ignore := "tmp/\n"
	cur.Spec.Ignore = &ignore
	g.Expect(testClient.Update(testCtx, cur)).To(Succeed())
	g.Eventually(func(g Gomega) {
		o := getRepo(g, ns, "repo")
		g.Expect(o.Status.ObservedIgnore).NotTo(BeNil())
		files, err := (&artifact.Fetcher{}).Fetch(testCtx, o.Status.Artifact.URL, o.Status.Artifact.Digest)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(files).NotTo(HaveKey("tmp/x.yaml"))
		g.Expect(files).To(HaveKey("a.yaml"))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	// Suspended: a new request is not handled.
	cur = getRepo(g, ns, "repo")
	cur.Spec.Suspend = true
	g.Expect(testClient.Update(testCtx, cur)).To(Succeed())
	time.Sleep(time.Second)
	c3 := repo.Commit("three", map[string]string{"a.yaml": "a: 3\n"})
	cur = getRepo(g, ns, "repo")
	patch = client.MergeFrom(cur.DeepCopy())
	cur.Annotations[meta.ReconcileRequestAnnotation] = "later"
	g.Expect(testClient.Patch(testCtx, cur, patch)).To(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getRepo(g, ns, "repo").Status.Artifact.Revision).NotTo(ContainSubstring(c3))
	}, 2*time.Second, 250*time.Millisecond).Should(Succeed())

	// An invalid URL stalls.
	bad := gitRepo(ns, "badurl", "ftp://example.com/repo", nil)
	err := testClient.Create(testCtx, bad)
	g.Expect(err).To(HaveOccurred(), "the CRD pattern rejects non-http(s)/ssh URLs")
	g.Expect(strings.Contains(err.Error(), "spec.url")).To(BeTrue(), err.Error())
	_ = fmt.Sprint()
	_ = context.Background()
}

func TestGitRepositoryRecoversFromAPIServerRestart(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "app")
	repo.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	// Create the object and stop the API server while it is being
	// reconciled: the status write fails, the controller keeps running and
	// gets there once the API server is back.
	obj := gitRepo(ns, "repo", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	testEnv.StopAPIServer()
	time.Sleep(3 * time.Second)
	g.Expect(testEnv.StartAPIServer(testCtx)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(readyRevision(g, ns, "repo")).To(HavePrefix("main@sha1:")) }, 90*time.Second, 500*time.Millisecond).Should(Succeed())
	// And it still reacts to new work after the outage.
	c2 := repo.Commit("two", map[string]string{"a.yaml": "a: 2\n"})
	cur := getRepo(g, ns, "repo")
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Annotations = map[string]string{meta.ReconcileRequestAnnotation: "after-restart"}
	g.Expect(testClient.Patch(testCtx, cur, patch)).To(Succeed())
	// The informers' watches come back after the restart with the
	// reflectors' backoff (up to 30 s each); on a loaded 2-core CI machine,
	// with every other controller test sharing this API server, that took
	// more than a minute once.
	g.Eventually(func(g Gomega) { g.Expect(readyRevision(g, ns, "repo")).To(Equal("main@sha1:" + c2)) }, 150*time.Second, 250*time.Millisecond).Should(Succeed())
}
