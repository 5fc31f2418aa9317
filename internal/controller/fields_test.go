package controller

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
)

// refusedFields sets each Kustomization field the controller refuses
// (Ready=False, Stalled=True, UnsupportedField naming it).
var refusedFields = map[string]func(*kustomizev1.KustomizationSpec){
	"spec.kubeConfig.configMapRef": func(s *kustomizev1.KustomizationSpec) {
		s.KubeConfig = &meta.KubeConfigReference{ConfigMapRef: &meta.LocalObjectReference{Name: "kc"}}
	},
	"spec.decryption.serviceAccountName": func(s *kustomizev1.KustomizationSpec) {
		s.Decryption = &kustomizev1.Decryption{Provider: "sops", ServiceAccountName: "kms"}
	},
}

// handled says how the controller handles each field of Flux's
// Kustomization v1 schema (api/testdata): "read" (honoured), "refused"
// (refusedFields), "written" (status), or a pending branch.
var handled = map[string]string{
	"spec.buildMetadata": "read (TestBuildMetadataAndMissingComponents)", "spec.commonMetadata": "read", "spec.components": "read",
	"spec.decryption": "read", "spec.decryption.serviceAccountName": "refused", "spec.deletionPolicy": "read",
	"spec.dependsOn": "read", "spec.dependsOn[].readyExpr": "read (TestReadyExprGatesDependency)", "spec.force": "read",
	"spec.healthCheckExprs": "read (TestHealthCheckExprs)", "spec.healthChecks": "read", "spec.ignore": "read (TestDriftIgnoreRules)",
	"spec.ignoreMissingComponents": "read (TestBuildMetadataAndMissingComponents)", "spec.images": "read", "spec.interval": "read",
	"spec.kubeConfig": "read (TestKubeConfigRemoteCluster)", "spec.kubeConfig.configMapRef": "refused", "spec.namePrefix": "read", "spec.nameSuffix": "read", "spec.patches": "read",
	"spec.path": "read", "spec.postBuild": "read", "spec.prune": "read", "spec.retryInterval": "read",
	"spec.serviceAccountName": "read", "spec.suspend": "read", "spec.targetNamespace": "read",
	"spec.timeout": "read", "spec.wait": "read",
	// Kinds other than GitRepository: ArtifactFailed, Stalled (source.go).
	"spec.sourceRef": "read",
	"status":         "written",
}

// TestKustomizationFieldsHandled: each field of Flux's Kustomization v1
// schema is read by the controller or refused with a reason naming it.
func TestKustomizationFieldsHandled(t *testing.T) {
	f, err := os.Open("../../api/testdata/flux-kustomization-v1-fields.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || p == "spec" || strings.HasPrefix(p, "#") {
			continue
		}
		// The longest listed prefix decides.
		if handled[howKey(handled, p)] == "" {
			t.Errorf("%s: not in the handled table", p)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for field, set := range refusedFields {
		ks := newKS("ns", "x", ".")
		set(&ks.Spec)
		f := unsupportedFields(ks)
		if f == nil || !f.stalled || f.reason != UnsupportedFieldReason || !strings.Contains(f.msg, field) {
			t.Errorf("%s: not refused with a reason naming it: %+v", field, f)
		}
	}
	if f := unsupportedFields(newKS("ns", "x", ".")); f != nil {
		t.Errorf("a plain Kustomization refused: %+v", f)
	}
}

// howKey is the longest key of m that is p or a prefix of p's path.
func howKey(m map[string]string, p string) string {
	best := ""
	for k := range m {
		if (p == k || strings.HasPrefix(p, k+".") || strings.HasPrefix(p, k+"[]")) && len(k) > len(best) {
			best = k
		}
	}
	return best
}

// TestKubeConfigRefusedNothingLocal: a Kustomization for a remote cluster
// reached by cloud identity is refused (Stalled, UnsupportedField naming
// spec.kubeConfig.configMapRef) and applies nothing to the local cluster.
func TestKubeConfigRefusedNothingLocal(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "remote")
	repo.Commit("cm", map[string]string{"app/cm.yaml": cmYAML(ns, "remote-only")})
	createSource(t, g, ns, repo.URL())
	ks := newKS(ns, "remote", "./app")
	refusedFields["spec.kubeConfig.configMapRef"](&ks.Spec)
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, ns, "remote", UnsupportedFieldReason)
		g.Expect(c.Message).To(ContainSubstring("spec.kubeConfig.configMapRef"))
		st := condition(g, getKS(g, ns, "remote").Status.Conditions, meta.StalledCondition)
		g.Expect(st.Status).To(Equal(metav1.ConditionTrue))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "remote-only")).To(BeFalse())
}
