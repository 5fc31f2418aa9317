package inventory

import (
	"testing"

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
		if got := ShouldApply(u, false); got != c.applyNew {
			t.Errorf("%v: ShouldApply(new) = %v", c.ann, got)
		}
		if got := ShouldApply(u, true); got != c.applyExist {
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
