package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
)

// installExternalArtifactCRD installs a CRD for Flux's ExternalArtifact
// (source.toolkit.fluxcd.io/v1), which lacre does not ship, as another
// producer of artifacts would, and waits until it is served.
func installExternalArtifactCRD(g Gomega) {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "externalartifacts.source.toolkit.fluxcd.io"},
		"spec": map[string]any{
			"group": "source.toolkit.fluxcd.io",
			"names": map[string]any{"kind": "ExternalArtifact", "listKind": "ExternalArtifactList", "plural": "externalartifacts", "singular": "externalartifact"},
			"scope": "Namespaced",
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"subresources": map[string]any{"status": map[string]any{}},
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	}}
	if err := testClient.Create(testCtx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Eventually(func() error {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(sourcev1.GroupVersion.WithKind("ExternalArtifactList"))
		return testClient.List(testCtx, l)
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
}

// setExternalArtifact creates or updates the ExternalArtifact ns/name with
// status.artifact = art.
func setExternalArtifact(g Gomega, ns, name string, lbl map[string]string, art *meta.Artifact) {
	ea := &unstructured.Unstructured{}
	ea.SetGroupVersionKind(sourcev1.GroupVersion.WithKind(externalArtifactKind))
	err := testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, ea)
	if apierrors.IsNotFound(err) {
		ea.SetNamespace(ns)
		ea.SetName(name)
		ea.SetLabels(lbl)
		g.Expect(testClient.Create(testCtx, ea)).To(Succeed())
	} else {
		g.Expect(err).NotTo(HaveOccurred())
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(art)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(unstructured.SetNestedMap(ea.Object, m, "status", "artifact")).To(Succeed())
	g.Expect(testClient.Status().Update(testCtx, ea)).To(Succeed())
}

// TestKustomizationFromExternalArtifact: a sourceRef kind lacre has no Go
// type for (Flux's ExternalArtifact, its CRD installed by the test) is read
// through its status.artifact once the ExternalArtifact feature gate is
// on, and a new artifact is followed (the kind's watch starts on first
// use). With the gate off, as Flux's default, the reference is refused
// (AccessDenied, Stalled).
func TestKustomizationFromExternalArtifact(t *testing.T) {
	g, ns := clusterTest(t)
	installExternalArtifactCRD(g)
	startWithFlags(t, "ea", ns, "--feature-gates=ExternalArtifact=true")
	lbl := map[string]string{isolatedLabel: "ea"}
	repo := newGitRepo(t, "ea")
	repo.Commit("one", map[string]string{"app/cm.yaml": cmYAML(ns, "one")})
	src := gitRepo(ns, "producer", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Labels = lbl
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	g.Eventually(func(g Gomega) { readyRevision(g, ns, "producer") }, time.Minute, 100*time.Millisecond).Should(Succeed())
	setExternalArtifact(g, ns, "ext", lbl, getRepo(g, ns, "producer").Status.Artifact)

	ks := newKS(ns, "from-ea", "./app")
	ks.Labels = lbl
	ks.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: externalArtifactKind, Name: "ext"}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "from-ea")
		getCM(g, ns, "one")
	}, time.Minute, 100*time.Millisecond).Should(Succeed())

	c2 := repo.Commit("two", map[string]string{"app/cm.yaml": cmYAML(ns, "two")})
	requestReconcile(g, getRepo(g, ns, "producer"))
	g.Eventually(func(g Gomega) {
		g.Expect(readyRevision(g, ns, "producer")).To(HaveSuffix(c2))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
	setExternalArtifact(g, ns, "ext", lbl, getRepo(g, ns, "producer").Status.Artifact)
	g.Eventually(func(g Gomega) {
		g.Expect(ksReady(g, ns, "from-ea").Status.LastAppliedRevision).To(HaveSuffix(c2))
		getCM(g, ns, "two")
	}, time.Minute, 100*time.Millisecond).Should(Succeed())

	// The shared manager runs with Flux's default: the gate off.
	off := newKS(ns, "gate-off", "./app")
	off.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: externalArtifactKind, Name: "ext"}
	g.Expect(testClient.Create(testCtx, off)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, ns, "gate-off", meta.AccessDeniedReason)
		g.Expect(c.Message).To(ContainSubstring("ExternalArtifact feature gate is disabled"))
		g.Expect(condition(g, getKS(g, ns, "gate-off").Status.Conditions, meta.StalledCondition).Status).To(BeEquivalentTo("True"))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
}
