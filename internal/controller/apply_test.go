package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// Apply as Flux's kustomize-controller (issue 14 item 1), on the real API
// server: stages waited for, whole-stage dry runs, kubectl's fields taken
// over unless ssa: Merge, the rules read on the live object, and forced
// recreation waiting for the old object to be gone.

// crdYAML is a namespaced CRD of kind in group, served at v1.
func crdYAML(group, kind, plural string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[3]s.%[1]s
spec:
  group: %[1]s
  names: {kind: %[2]s, listKind: %[2]sList, plural: %[3]s, singular: %[3]s}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, group, kind, plural)
}

// applyKS creates the Kustomization apps of ./apps in ns from repo url.
func applyKS(t *testing.T, g Gomega, ns, url string, edit func(*kustomizev1.Kustomization)) {
	t.Helper()
	createSource(t, g, ns, url)
	ks := faultKS(ns, "", nil)
	if edit != nil {
		edit(ks)
	}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
}

// TestApplyStagesWaitForDefinitions: a CRD, a Namespace and objects in
// them applied in one commit (the CRD Established before its custom
// resource is applied); a CRD that never becomes Established stops the
// run before the later stages, naming it.
func TestApplyStagesWaitForDefinitions(t *testing.T) {
	g, ns := clusterTest(t)
	group := ns + ".lacre.test"
	extra := ns + "-extra"
	t.Cleanup(func() { deleteCRDs(group) })
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{
		"apps/crd.yaml":    crdYAML(group, "Widget", "widgets"),
		"apps/widget.yaml": "apiVersion: " + group + "/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: " + extra + "\nspec:\n  size: 3\n",
		"apps/ns.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + extra + "\n",
		"apps/cm.yaml":     cmYAML(extra, "a"),
	})
	applyKS(t, g, ns, repo.URL(), nil)
	appliedAt(g, ns, c1, 90*time.Second)
	w := &unstructured.Unstructured{}
	w.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: "v1", Kind: "Widget"})
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: extra, Name: "w"}, w)).To(Succeed())
	g.Expect(exists(g, &corev1.ConfigMap{}, extra, "a")).To(BeTrue())

	// A second CRD claiming the kind Widget in the same group: its names
	// are refused, it is never Established, and nothing after it is
	// applied.
	repo.Commit("two", map[string]string{
		"apps/clash.yaml": crdYAML(group, "Widget", "gadgets"),
		"apps/cm-b.yaml":  cmYAML(extra, "b"),
	})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.ReconciliationFailedReason))
		g.Expect(c.Message).To(ContainSubstring("CustomResourceDefinition/gadgets." + group + " status: 'Failed'"))
	})
	g.Expect(exists(g, &corev1.ConfigMap{}, extra, "b")).To(BeFalse(), "applied before the CRD stage was ready")
}

// deleteCRDs removes the test's CRDs (cluster-scoped, so not cleaned up
// with its namespace).
func deleteCRDs(group string) {
	for _, plural := range []string{"widgets", "gadgets"} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		u.SetName(plural + "." + group)
		_ = testClient.Delete(testCtx, u)
	}
}

// TestApplyDryRunsWholeStage: one invalid object in a stage: the error
// names it and nothing of the stage is written, not even the valid
// objects sorted before it.
func TestApplyDryRunsWholeStage(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "r")
	repo.Commit("one", map[string]string{
		"apps/a.yaml":   cmYAML(ns, "a"),
		"apps/bad.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n  namespace: " + ns + "\nspec:\n  ports:\n  - port: 70000\n",
		"apps/z.yaml":   "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: z\n  namespace: " + ns + "\n",
	})
	applyKS(t, g, ns, repo.URL(), nil)
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.ReconciliationFailedReason))
		g.Expect(c.Message).To(ContainSubstring("Service/" + ns + "/bad dry-run failed (Invalid)"))
	})
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeFalse(), "written before the stage's dry run passed")
	g.Expect(exists(g, &corev1.ServiceAccount{}, ns, "z")).To(BeFalse(), "written before the stage's dry run passed")
}

// TestApplyTakesOverKubectlFields: fields kubectl added (client-side
// apply, server-side apply, edits) are reverted and the last-applied
// annotation removed; with ssa: Merge they are kept.
func TestApplyTakesOverKubectlFields(t *testing.T) {
	g, ns := clusterTest(t)
	for _, name := range []string{"cm", "merged"} {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{}"}},
			Data:       map[string]string{"a": "old", "csa": "x"},
		}
		g.Expect(testClient.Create(testCtx, cm, client.FieldOwner("kubectl-client-side-apply"))).To(Succeed())
		ssaCM := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"namespace": ns, "name": name},
			"data":     map[string]any{"ssa": "y"},
		}}
		g.Expect(testClient.Patch(testCtx, ssaCM, client.Apply, client.FieldOwner("kubectl"))).To(Succeed())
	}
	merged := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: merged\n  namespace: " + ns +
		"\n  annotations:\n    kustomize.toolkit.fluxcd.io/ssa: Merge\ndata:\n  a: b\n"
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{"apps/cm.yaml": cmYAML(ns, "cm"), "apps/merged.yaml": merged})
	applyKS(t, g, ns, repo.URL(), nil)
	appliedAt(g, ns, c1, 90*time.Second)

	cm := getCM(g, ns, "cm")
	g.Expect(cm.Data).To(Equal(map[string]string{"a": "b"}))
	g.Expect(cm.Annotations).NotTo(HaveKey(corev1.LastAppliedConfigAnnotation))
	for _, mf := range cm.ManagedFields {
		g.Expect(mf.Manager).NotTo(HavePrefix("kubectl"), "kubectl still manages fields")
	}
	m := getCM(g, ns, "merged")
	g.Expect(m.Data).To(Equal(map[string]string{"a": "b", "csa": "x", "ssa": "y"}))
	g.Expect(m.Annotations).To(HaveKey(corev1.LastAppliedConfigAnnotation))

	// Taken over once: the next reconcile writes nothing.
	reconcileHandled(g, ns, "apps", true)
	g.Expect(getCM(g, ns, "cm").ResourceVersion).To(Equal(cm.ResourceVersion))
	g.Expect(getCM(g, ns, "merged").ResourceVersion).To(Equal(m.ResourceVersion))
}

// TestApplyHonoursLiveObject: reconcile: disabled and ssa: Ignore set on
// the live object (annotation or label, any case) stop the controller
// from reverting it, as Flux.
func TestApplyHonoursLiveObject(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{
		"apps/off.yaml": cmYAML(ns, "off"), "apps/ign.yaml": cmYAML(ns, "ign"), "apps/on.yaml": cmYAML(ns, "on"),
	})
	applyKS(t, g, ns, repo.URL(), nil)
	appliedAt(g, ns, c1, 90*time.Second)
	edit := func(name string, set func(*corev1.ConfigMap)) {
		cm := getCM(g, ns, name)
		set(cm)
		cm.Data["a"] = "edited"
		g.Expect(testClient.Update(testCtx, cm)).To(Succeed())
	}
	edit("off", func(cm *corev1.ConfigMap) {
		cm.Annotations = map[string]string{kustomizev1.ReconcileAnnotation: "Disabled"}
	})
	edit("ign", func(cm *corev1.ConfigMap) { cm.Labels[kustomizev1.SSAAnnotation] = "Ignore" })
	edit("on", func(*corev1.ConfigMap) {})

	c2 := repo.Commit("two", map[string]string{
		"apps/off.yaml": cmYAML(ns, "off") + "  c: d\n", "apps/ign.yaml": cmYAML(ns, "ign") + "  c: d\n", "apps/on.yaml": cmYAML(ns, "on") + "  c: d\n",
	})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	appliedAt(g, ns, c2, 60*time.Second)
	g.Expect(getCM(g, ns, "on").Data).To(Equal(map[string]string{"a": "b", "c": "d"}))
	g.Expect(getCM(g, ns, "off").Data).To(Equal(map[string]string{"a": "edited"}))
	g.Expect(getCM(g, ns, "ign").Data).To(Equal(map[string]string{"a": "edited"}))
}

// TestApplyForceWaitsUntilGone: an immutable change fails the dry run
// naming the object; with spec.force the object is deleted and the
// controller waits while a finalizer holds it, then creates it anew. The
// retry interval is long, so only a controller that waits converges.
func TestApplyForceWaitsUntilGone(t *testing.T) {
	g, ns := clusterTest(t)
	imm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: imm\n  namespace: " + ns + "\nimmutable: true\ndata:\n  a: " + v + "\n"
	}
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{"apps/imm.yaml": imm("one")})
	applyKS(t, g, ns, repo.URL(), func(ks *kustomizev1.Kustomization) {
		ks.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Minute}
	})
	appliedAt(g, ns, c1, 90*time.Second)
	old := getCM(g, ns, "imm")
	old.Finalizers = []string{"lacre.test/hold"}
	g.Expect(testClient.Update(testCtx, old)).To(Succeed())

	c2 := repo.Commit("two", map[string]string{"apps/imm.yaml": imm("two")})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Message).To(ContainSubstring("ConfigMap/" + ns + "/imm dry-run failed (Invalid)"))
	})
	g.Expect(getCM(g, ns, "imm").DeletionTimestamp).To(BeNil(), "deleted without force")

	k := getKS(g, ns, "apps")
	k.Spec.Force = true
	k.Spec.RetryInterval = &metav1.Duration{Duration: time.Hour}
	g.Expect(testClient.Update(testCtx, k)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getCM(g, ns, "imm").DeletionTimestamp).NotTo(BeNil())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(getKS(g, ns, "apps").Status.LastAppliedRevision).NotTo(Equal("main@sha1:"+c2), "applied while the old object was still there")

	held := getCM(g, ns, "imm")
	held.Finalizers = nil
	g.Expect(testClient.Update(testCtx, held)).To(Succeed())
	appliedAt(g, ns, c2, 60*time.Second)
	cm := getCM(g, ns, "imm")
	g.Expect(cm.Data).To(Equal(map[string]string{"a": "two"}))
	g.Expect(cm.UID).NotTo(Equal(old.UID))
}

// TestApplyFlags: Flux's --override-manager and --custom-apply-stage-kinds
// reach the options; a malformed kind list is refused naming the flag.
func TestApplyFlags(t *testing.T) {
	var o Options
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{"--override-manager=helm", "--override-manager=argocd", "--custom-apply-stage-kinds=example.com/Widget,LimitRange"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.OverrideManagers, ",") != "helm,argocd" || len(o.CustomStageKinds) != 2 ||
		!o.CustomStageKinds[schema.GroupKind{Group: "example.com", Kind: "Widget"}] {
		t.Errorf("options %v %v", o.OverrideManagers, o.CustomStageKinds)
	}
	var bad Options
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	bad.BindFlags(fs)
	if err := fs.Parse([]string{"--custom-apply-stage-kinds=a/b/c"}); err != nil {
		t.Fatal(err)
	}
	if err := bad.Complete(); err == nil || !strings.Contains(err.Error(), "--custom-apply-stage-kinds") {
		t.Errorf("Complete: %v", err)
	}
}

// TestApplySecretStringData: as Flux, a Secret's stringData is applied as
// data, so a key removed from Git is removed from the cluster.
func TestApplySecretStringData(t *testing.T) {
	g, ns := clusterTest(t)
	sec := func(keys string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: " + ns + "\nstringData:\n" + keys
	}
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{"apps/s.yaml": sec("  a: one\n  b: two\n")})
	applyKS(t, g, ns, repo.URL(), nil)
	appliedAt(g, ns, c1, 90*time.Second)
	c2 := repo.Commit("two", map[string]string{"apps/s.yaml": sec("  a: three\n")})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	appliedAt(g, ns, c2, 60*time.Second)
	s := &corev1.Secret{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "s"}, s)).To(Succeed())
	g.Expect(s.Data).To(Equal(map[string][]byte{"a": []byte("three")}))
}
