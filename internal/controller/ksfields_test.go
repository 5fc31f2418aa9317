package controller

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

func labeledCM(ns, name, label, x, z string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
		"\n  labels:\n    tier: " + label + "\ndata:\n  x: " + x + "\n  z: " + z + "\n"
}

// editCM changes data entries of a ConfigMap with an update by manager
// (kubectl-edit: as `kubectl edit` does, fields the controller takes over).
func editCM(g Gomega, ns, name, manager string, data map[string]string) {
	cm := getCM(g, ns, name)
	for k, v := range data {
		cm.Data[k] = v
	}
	g.Expect(testClient.Update(testCtx, cm, client.FieldOwner(manager))).To(Succeed())
}

// TestDriftIgnoreRules: spec.ignore on the real API server, as Flux. A
// field changed in the cluster at a path of a rule selecting the object is
// kept (the object left alone, and kept when the object is applied for
// another change); the same change on an object the rule's target does
// not select is reverted; a rule with an invalid target fails the apply
// naming it.
func TestDriftIgnoreRules(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "ignore")
	repo.Commit("cms", map[string]string{
		"app/a.yaml": labeledCM(ns, "ignored", "scaled", "git", "git"),
		"app/b.yaml": labeledCM(ns, "plain", "web", "git", "git"),
	})
	createSource(t, g, ns, repo.URL())
	ks := newKS(ns, "ign", "./app")
	// A short interval: a reconcile request within spec.interval of the
	// last full apply with an unchanged build applies nothing (docs/api.md,
	// "Unchanged builds and drift"); drift is corrected on the interval.
	ks.Spec.Interval = metav1.Duration{Duration: 2 * time.Second}
	ks.Spec.Ignore = []kustomizev1.IgnoreRule{{
		Paths:  []string{"/data/x"},
		Target: &kustomizev1.Selector{Kind: "Config.*", LabelSelector: "tier=scaled"},
	}}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) { ksReady(g, ns, "ign") }, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(getCM(g, ns, "ignored").Data["x"]).To(Equal("git"), "a new object is created with the ignored field")

	// By a manager not taken over: the object is left alone.
	editCM(g, ns, "ignored", "autoscaler", map[string]string{"x": "cluster"})
	editCM(g, ns, "plain", "autoscaler", map[string]string{"x": "cluster"})
	rv := getCM(g, ns, "ignored").ResourceVersion
	g.Eventually(func(g Gomega) {
		g.Expect(getCM(g, ns, "plain").Data["x"]).To(Equal("git"), "not selected by the target: reverted")
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(getCM(g, ns, "ignored").Data["x"]).To(Equal("cluster"))
	g.Expect(getCM(g, ns, "ignored").ResourceVersion).To(Equal(rv), "no drift but at ignored paths: not applied")

	// Applied for another drift (and kubectl's fields taken over): the
	// ignored field keeps its live value.
	editCM(g, ns, "ignored", "kubectl-edit", map[string]string{"x": "edited", "z": "cluster"})
	g.Eventually(func(g Gomega) {
		g.Expect(getCM(g, ns, "ignored").Data).To(Equal(map[string]string{"x": "edited", "z": "git"}))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// Owned by another server-side apply manager: left to it.
	other := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "ignored", "namespace": ns}, "data": map[string]any{"x": "other"},
	}}
	g.Expect(testClient.Patch(testCtx, other, client.Apply, client.FieldOwner("other-tool"), client.ForceOwnership)).To(Succeed())
	editCM(g, ns, "ignored", "kubectl-edit", map[string]string{"z": "cluster"})
	g.Eventually(func(g Gomega) {
		g.Expect(getCM(g, ns, "ignored").Data).To(Equal(map[string]string{"x": "other", "z": "git"}))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// Without the rule the change is reverted.
	k := getKS(g, ns, "ign")
	k.Spec.Ignore = nil
	g.Expect(testClient.Update(testCtx, k)).To(Succeed())
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "ign")
		g.Expect(getCM(g, ns, "ignored").Data["x"]).To(Equal("git"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	k = getKS(g, ns, "ign")
	k.Spec.Ignore = []kustomizev1.IgnoreRule{{Paths: []string{"/data/x"}, Target: &kustomizev1.Selector{Name: "("}}}
	g.Expect(testClient.Update(testCtx, k)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, ns, "ign", kustomizev1.ReconciliationFailedReason)
		g.Expect(c.Message).To(ContainSubstring(`spec.ignore[0].target: invalid name regex "("`))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestBuildMetadataAndMissingComponents: spec.buildMetadata's origin
// annotation reaches the applied object and a missing component with
// spec.ignoreMissingComponents is left out of the build.
func TestBuildMetadataAndMissingComponents(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "buildmeta")
	repo.Commit("app", map[string]string{
		"app/kustomization.yaml": "resources: [cm.yaml]\n",
		"app/cm.yaml":            cmYAML(ns, "meta"),
	})
	createSource(t, g, ns, repo.URL())
	ks := newKS(ns, "meta", "./app")
	ks.Spec.BuildMetadata = []kustomizev1.BuildMetadataOption{kustomizev1.BuildMetadataOriginAnnotations}
	ks.Spec.Components = []string{"../no-such-component"}
	ks.Spec.IgnoreMissingComponents = true
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "meta")
		cm := &corev1.ConfigMap{}
		g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "meta"}, cm)).To(Succeed())
		g.Expect(strings.TrimSpace(cm.Annotations["config.kubernetes.io/origin"])).To(Equal("path: cm.yaml"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}
