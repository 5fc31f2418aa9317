package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// deletionKS applies one ConfigMap "held" through a Kustomization with
// prune and policy, waits until it is Ready and returns it.
func deletionKS(t *testing.T, g Gomega, ns string, prune bool, policy string) *kustomizev1.Kustomization {
	t.Helper()
	repo := newGitRepo(t, "del")
	repo.Commit("cm", map[string]string{"app/cm.yaml": cmYAML(ns, "held")})
	createSource(t, g, ns, repo.URL())
	ks := newKS(ns, "del", "./app")
	ks.Spec.Prune = prune
	ks.Spec.DeletionPolicy = policy
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) { ksReady(g, ns, "del") }, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	return getKS(g, ns, "del")
}

// deleteAndWaitGone deletes the Kustomization and waits until it is gone
// (its finalizer handled).
func deleteAndWaitGone(g Gomega, ks *kustomizev1.Kustomization) {
	g.Expect(testClient.Delete(testCtx, ks)).To(Succeed())
	g.Eventually(func() bool {
		err := testClient.Get(testCtx, client.ObjectKeyFromObject(ks), &kustomizev1.Kustomization{})
		return apierrors.IsNotFound(err)
	}, 60*time.Second, 250*time.Millisecond).Should(BeTrue())
}

// cmGoneOrGoing reports whether the ConfigMap is deleted or being deleted.
func cmGoneOrGoing(g Gomega, ns, name string) bool {
	cm := &corev1.ConfigMap{}
	err := testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return true
	}
	g.Expect(err).NotTo(HaveOccurred())
	return cm.DeletionTimestamp != nil
}

// TestDeletionPolicy: MirrorPrune follows spec.prune, Delete deletes even
// without prune, Orphan keeps the objects even with prune (Flux's
// finalizerShouldDeleteResources).
func TestDeletionPolicy(t *testing.T) {
	for _, c := range []struct {
		policy  string
		prune   bool
		deletes bool
	}{
		{"", true, true},
		{kustomizev1.DeletionPolicyMirrorPrune, false, false},
		{kustomizev1.DeletionPolicyDelete, false, true},
		{kustomizev1.DeletionPolicyOrphan, true, false},
	} {
		t.Run(c.policy+map[bool]string{true: "-prune", false: "-noprune"}[c.prune], func(t *testing.T) {
			g, ns := clusterTest(t)
			ks := deletionKS(t, g, ns, c.prune, c.policy)
			want := c.policy
			if want == "" {
				want = kustomizev1.DeletionPolicyMirrorPrune
			}
			g.Expect(ks.GetDeletionPolicy()).To(Equal(want))
			deleteAndWaitGone(g, ks)
			g.Expect(cmGoneOrGoing(g, ns, "held")).To(Equal(c.deletes))
		})
	}
}

// TestDeletionPolicyWaitForTermination: the Kustomization keeps its
// finalizer until the objects it deleted are gone.
func TestDeletionPolicyWaitForTermination(t *testing.T) {
	g, ns := clusterTest(t)
	ks := deletionKS(t, g, ns, false, kustomizev1.DeletionPolicyWaitForTermination)
	// A finalizer holds the ConfigMap once deleted.
	cm := getCM(g, ns, "held")
	cm.Finalizers = append(cm.Finalizers, "test.lacre.dev/hold")
	g.Expect(testClient.Update(testCtx, cm)).To(Succeed())

	g.Expect(testClient.Delete(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getCM(g, ns, "held").DeletionTimestamp).NotTo(BeNil())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	// The ConfigMap is terminating, not gone: the Kustomization waits.
	k := getKS(g, ns, "del")
	g.Expect(k.DeletionTimestamp).NotTo(BeNil())
	g.Expect(k.Finalizers).To(ContainElement(kustomizev1.KustomizationFinalizer))

	cm = getCM(g, ns, "held")
	cm.Finalizers = nil
	g.Expect(testClient.Update(testCtx, cm)).To(Succeed())
	g.Eventually(func() bool {
		err := testClient.Get(testCtx, client.ObjectKeyFromObject(ks), &kustomizev1.Kustomization{})
		return apierrors.IsNotFound(err)
	}, 60*time.Second, 250*time.Millisecond).Should(BeTrue())
	g.Expect(apierrors.IsNotFound(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "held"}, &corev1.ConfigMap{}))).To(BeTrue())
}

// TestHistoryAndOriginRevision: a successful reconcile records a
// snapshot (digest, revision metadata, one reconciliation); another
// reconcile of the same build counts on it; a GitRepository artifact has
// no origin revision.
func TestHistoryAndOriginRevision(t *testing.T) {
	g, ns := clusterTest(t)
	ks := deletionKS(t, g, ns, true, "")
	g.Expect(ks.Status.History).To(HaveLen(1))
	s := ks.Status.History[0]
	g.Expect(s.Digest).To(MatchRegexp(`^sha256:[0-9a-f]{64}$`))
	g.Expect(s.LastReconciledStatus).To(Equal(kustomizev1.ReconciliationSucceededReason))
	g.Expect(s.Metadata).To(Equal(map[string]string{"revision": ks.Status.LastAppliedRevision}))
	g.Expect(s.TotalReconciliations).To(BeEquivalentTo(1))
	g.Expect(ks.Status.LastAppliedOriginRevision).To(BeEmpty())

	reconcileHandled(g, ns, "del", true)
	ks = getKS(g, ns, "del")
	g.Expect(ks.Status.History).To(HaveLen(1))
	g.Expect(ks.Status.History[0].Digest).To(Equal(s.Digest))
	g.Expect(ks.Status.History[0].TotalReconciliations).To(BeEquivalentTo(2))
	g.Expect(ks.Status.History[0].FirstReconciled.Equal(&s.FirstReconciled)).To(BeTrue())
}
