package controller

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
)

// spec.healthCheckExprs and spec.dependsOn[].readyExpr (issue 15 item 5),
// on the real API server.

// statusCRDYAML is a CRD of kind Widget in group whose objects carry a
// free-form status (no status subresource).
func statusCRDYAML(group string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.%[1]s
spec:
  group: %[1]s
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
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
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, group)
}

// TestHealthCheckExprs: a custom resource whose health only the
// expressions know: failed when its status says so (HealthCheckFailed),
// Ready once current is true.
func TestHealthCheckExprs(t *testing.T) {
	g, ns := clusterTest(t)
	group := ns + ".lacre.test"
	t.Cleanup(func() { deleteCRDs(group) })
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{
		"apps/crd.yaml":    statusCRDYAML(group),
		"apps/widget.yaml": "apiVersion: " + group + "/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: " + ns + "\nspec:\n  size: 3\n",
	})
	applyKS(t, g, ns, repo.URL(), func(ks *kustomizev1.Kustomization) {
		ks.Spec.Wait = true
		ks.Spec.Timeout = &metav1.Duration{Duration: 20 * time.Second}
		ks.Spec.HealthCheckExprs = []kustomizev1.CustomHealthCheck{{APIVersion: group + "/v1", Kind: "Widget",
			HealthCheckExpressions: kustomizev1.HealthCheckExpressions{
				Current: "status.phase == 'Ready'",
				Failed:  "status.phase == 'Failed'",
			}}}
	})
	setPhase := func(phase string) {
		g.Eventually(func(g Gomega) {
			w := &unstructured.Unstructured{}
			w.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: "v1", Kind: "Widget"})
			g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "w"}, w)).To(Succeed())
			g.Expect(unstructured.SetNestedField(w.Object, phase, "status", "phase")).To(Succeed())
			g.Expect(testClient.Update(testCtx, w)).To(Succeed())
		}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	}
	setPhase("Failed")
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.HealthCheckFailedReason))
		g.Expect(c.Message).To(ContainSubstring("Widget/" + ns + "/w failed"))
	})
	setPhase("Ready")
	requestReconcile(g, getKS(g, ns, "apps"))
	appliedAt(g, ns, c1, 60*time.Second)
}

// TestInvalidCELStalls: an expression that does not compile stalls the
// Kustomization (InvalidCELExpression) with the field named.
func TestInvalidCELStalls(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		edit        func(*kustomizev1.Kustomization)
	}{
		{"health", "spec.healthCheckExprs[0].current", func(ks *kustomizev1.Kustomization) {
			ks.Spec.HealthCheckExprs = []kustomizev1.CustomHealthCheck{{APIVersion: "example.com/v1", Kind: "Widget",
				HealthCheckExpressions: kustomizev1.HealthCheckExpressions{Current: "status.("}}}
		}},
		{"ready", "spec.dependsOn[0].readyExpr", func(ks *kustomizev1.Kustomization) {
			ks.Spec.DependsOn = []meta.DependencyReference{{Name: "infra", ReadyExpr: "dep.status.conditions"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ns := clusterTest(t)
			repo := newGitRepo(t, "r")
			repo.Commit("one", map[string]string{"apps/cm.yaml": cmYAML(ns, "a")})
			applyKS(t, g, ns, repo.URL(), tc.edit)
			ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
				g.Expect(c.Reason).To(Equal(meta.InvalidCELExpressionReason))
				g.Expect(c.Message).To(HavePrefix(terminalConfigMessage + ": " + tc.field))
				k := getKS(g, ns, "apps")
				g.Expect(apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.StalledCondition)).To(BeTrue())
			})
			g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeFalse())
		})
	}
}

// TestReadyExprGatesDependency: a readyExpr replaces the built-in check
// (AdditiveCELDependencyCheck off): false holds the dependent back with
// Flux's message; true lets it run though the dependency never was Ready.
func TestReadyExprGatesDependency(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{"infra/cm.yaml": cmYAML(ns, "infra"), "apps/cm.yaml": cmYAML(ns, "apps")})
	createSource(t, g, ns, repo.URL())
	infra := newKS(ns, "infra", "./infra")
	infra.Spec.Suspend = true
	g.Expect(testClient.Create(testCtx, infra)).To(Succeed())
	apps := newKS(ns, "apps", "./apps")
	apps.Spec.DependsOn = []meta.DependencyReference{{Name: "infra", ReadyExpr: "!dep.spec.suspend"}}
	g.Expect(testClient.Create(testCtx, apps)).To(Succeed())
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(meta.DependencyNotReadyReason))
		g.Expect(c.Message).To(Equal("dependency '" + ns + "/infra' is not ready according to readyExpr eval"))
	})
	g.Eventually(func(g Gomega) {
		k := getKS(g, ns, "apps")
		k.Spec.DependsOn[0].ReadyExpr = "dep.spec.suspend && self.metadata.name == 'apps'"
		g.Expect(testClient.Update(testCtx, k)).To(Succeed())
	}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
	appliedAt(g, ns, c1, 60*time.Second)
	g.Expect(getKS(g, ns, "infra").Status.Conditions).To(BeEmpty())
}

// TestReadyExprAdditiveGate: with AdditiveCELDependencyCheck, a true
// readyExpr does not replace the built-in check: a dependency that was
// never Ready still holds the dependent back.
func TestReadyExprAdditiveGate(t *testing.T) {
	g, ns := clusterTest(t)
	infra := newKS(ns, "infra", "./infra")
	infra.Spec.Suspend = true
	g.Expect(testClient.Create(testCtx, infra)).To(Succeed())
	apps := newKS(ns, "apps", "./apps")
	apps.Spec.DependsOn = []meta.DependencyReference{{Name: "infra", ReadyExpr: "dep.spec.suspend == true"}}
	art := &meta.Artifact{Revision: "main@sha1:0"}
	for _, c := range []struct {
		additive bool
		want     string
	}{{false, ""}, {true, "dependency '" + ns + "/infra' is not ready"}} {
		r := &KustomizationReconciler{APIReader: testClient, AdditiveCELDependencyCheck: c.additive}
		g.Expect(r.dependenciesNotReady(testCtx, apps, art)).To(Equal(c.want), "additive=%v", c.additive)
	}
}
