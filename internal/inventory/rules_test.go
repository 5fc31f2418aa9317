package inventory

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// TestRules: which objects are applied and pruned, for every annotation
// the rules read. The controller and `lacre diff` both decide by these
// functions (internal/cli/cluster's diff test checks the end to end).
func TestRules(t *testing.T) {
	owner := Owner{Name: "apps", Namespace: "flux-system"}
	for _, c := range []struct {
		ann                  map[string]string
		applyNew, applyExist bool
		prune                bool
	}{
		{nil, true, true, true},
		{map[string]string{kustomizev1.ReconcileAnnotation: kustomizev1.DisabledValue}, false, false, false},
		{map[string]string{kustomizev1.ReconcileAnnotation: "enabled"}, true, true, true},
		{map[string]string{kustomizev1.SSAAnnotation: SSAIgnore}, false, false, false},
		{map[string]string{kustomizev1.SSAAnnotation: SSAIfNotPresent}, true, false, true},
		{map[string]string{kustomizev1.SSAAnnotation: SSAMerge}, true, true, true},
		{map[string]string{kustomizev1.SSAAnnotation: SSAOverride}, true, true, true},
		{map[string]string{kustomizev1.PruneAnnotation: kustomizev1.DisabledValue}, true, true, false},
		{map[string]string{kustomizev1.PruneAnnotation: "enabled"}, true, true, true},
	} {
		u := obj("v1", "ConfigMap", "apps", "cm")
		u.SetAnnotations(c.ann)
		if got := ShouldApply(u, nil); got != c.applyNew {
			t.Errorf("%v: ShouldApply(new) = %v", c.ann, got)
		}
		if got := ShouldApply(u, obj("v1", "ConfigMap", "apps", "cm")); got != c.applyExist {
			t.Errorf("%v: ShouldApply(existing) = %v", c.ann, got)
		}
		if Prunable(u, owner) {
			t.Errorf("%v: Prunable without the owner labels", c.ann)
		}
		owner.Label(u)
		if got := Prunable(u, owner); got != c.prune {
			t.Errorf("%v: Prunable = %v", c.ann, got)
		}
		if Prunable(u, Owner{Name: "other", Namespace: "flux-system"}) {
			t.Errorf("%v: Prunable for another owner", c.ann)
		}
	}
}

// TestRulesOnLiveObject: as Flux, reconcile: disabled and ssa: Ignore are
// read on the live object too, as labels or annotations, in any case;
// ssa: Merge on either object keeps kubectl's fields; force on either
// object recreates.
func TestRulesOnLiveObject(t *testing.T) {
	built := obj("v1", "ConfigMap", "apps", "cm")
	for _, c := range []struct {
		labels, ann map[string]string
		apply       bool
	}{
		{nil, nil, true},
		{nil, map[string]string{kustomizev1.ReconcileAnnotation: "Disabled"}, false},
		{map[string]string{kustomizev1.ReconcileAnnotation: "disabled"}, nil, false},
		{nil, map[string]string{kustomizev1.SSAAnnotation: "ignore"}, false},
		{map[string]string{kustomizev1.SSAAnnotation: SSAIgnore}, nil, false},
		// IfNotPresent is read on the built object only.
		{nil, map[string]string{kustomizev1.SSAAnnotation: SSAIfNotPresent}, true},
	} {
		live := obj("v1", "ConfigMap", "apps", "cm")
		live.SetLabels(c.labels)
		live.SetAnnotations(c.ann)
		if got := ShouldApply(built, live); got != c.apply {
			t.Errorf("live %v %v: ShouldApply = %v", c.labels, c.ann, got)
		}
	}
	merge := obj("v1", "ConfigMap", "apps", "cm")
	merge.SetAnnotations(map[string]string{kustomizev1.SSAAnnotation: "merge"})
	if TakesOver(built, merge) || TakesOver(merge, nil) || !TakesOver(built, nil) || !TakesOver(built, built) {
		t.Error("TakesOver: ssa: Merge on either object keeps kubectl's fields")
	}
	forced := obj("v1", "ConfigMap", "apps", "cm")
	forced.SetLabels(map[string]string{kustomizev1.ForceAnnotation: "Enabled"})
	if !Forced(built, forced, false) || !Forced(forced, built, false) || !Forced(built, built, true) || Forced(built, built, false) {
		t.Error("Forced: spec.force, or force: enabled on either object")
	}
}

// TestSortForApply: Flux's stages (with --custom-apply-stage-kinds) and
// kind order.
func TestSortForApply(t *testing.T) {
	objs := []*unstructured.Unstructured{
		obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "w"),
		obj("apps/v1", "Deployment", "b", "d"),
		obj("example.com/v1", "Widget", "a", "w"),
		obj("v1", "ConfigMap", "b", "c"),
		obj("v1", "ConfigMap", "a", "c"),
		obj("networking.k8s.io/v1", "IngressClass", "", "ic"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "crb"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "cr"),
		obj("v1", "Namespace", "", "a"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com"),
	}
	custom, err := ParseStageKinds(" example.com/Widget, LimitRange")
	if err != nil || len(custom) != 2 || !custom[schema.GroupKind{Kind: "LimitRange"}] {
		t.Fatalf("ParseStageKinds: %v %v", custom, err)
	}
	if _, err := ParseStageKinds("a/b/c"); err == nil {
		t.Error("ParseStageKinds accepted a/b/c")
	}
	SortForApply(objs, custom)
	var got []string
	for _, u := range objs {
		got = append(got, fmt.Sprintf("%d:%s", Stage(u, custom), Of(u)))
	}
	want := []string{
		"0:CustomResourceDefinition/widgets.example.com", "0:Namespace/a", "0:ClusterRole/cr",
		"1:IngressClass/ic",
		"2:Widget/a/w",
		"3:ClusterRoleBinding/crb", "3:ConfigMap/a/c", "3:ConfigMap/b/c", "3:Deployment/b/d",
		"3:ValidatingWebhookConfiguration/w",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order:\n got %v\nwant %v", got, want)
	}
}
