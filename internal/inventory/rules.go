package inventory

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// Labels set on every applied object: the Kustomization that owns it.
const (
	NameLabel      = "kustomize.toolkit.fluxcd.io/name"
	NamespaceLabel = "kustomize.toolkit.fluxcd.io/namespace"
)

// Values of kustomizev1.SSAAnnotation (Flux's). Merge and Override apply
// as usual; Ignore leaves the object alone; IfNotPresent creates it only.
const (
	SSAIgnore       = "Ignore"
	SSAIfNotPresent = "IfNotPresent"
	SSAMerge        = "Merge"
	SSAOverride     = "Override"
)

// Owner is the Kustomization that applies an object.
type Owner struct{ Name, Namespace string }

// OwnerOf returns ks as an owner.
func OwnerOf(ks *kustomizev1.Kustomization) Owner {
	return Owner{Name: ks.Name, Namespace: ks.Namespace}
}

// Label sets o's owner labels on u.
func (o Owner) Label(u *unstructured.Unstructured) {
	l := u.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[NameLabel], l[NamespaceLabel] = o.Name, o.Namespace
	u.SetLabels(l)
}

// Owns reports whether u carries o's owner labels.
func (o Owner) Owns(u *unstructured.Unstructured) bool {
	l := u.GetLabels()
	return l[NameLabel] == o.Name && l[NamespaceLabel] == o.Namespace
}

// Ignored reports whether the controller leaves u alone: reconcile:
// disabled or ssa: Ignore. It stays in the inventory, but is neither
// applied, waited for, nor pruned.
func Ignored(u *unstructured.Unstructured) bool {
	a := u.GetAnnotations()
	return a[kustomizev1.ReconcileAnnotation] == kustomizev1.DisabledValue || a[kustomizev1.SSAAnnotation] == SSAIgnore
}

// ShouldApply reports whether the built object u is applied, given
// whether it exists in the cluster: not when Ignored, nor when it exists
// and says ssa: IfNotPresent.
func ShouldApply(u *unstructured.Unstructured, exists bool) bool {
	if Ignored(u) {
		return false
	}
	return !exists || u.GetAnnotations()[kustomizev1.SSAAnnotation] != SSAIfNotPresent
}

// Prunable reports whether the live object, gone from the build, is
// deleted: it carries owner's labels, is not Ignored, and does not say
// prune: disabled.
func Prunable(live *unstructured.Unstructured, owner Owner) bool {
	return owner.Owns(live) && !Ignored(live) &&
		live.GetAnnotations()[kustomizev1.PruneAnnotation] != kustomizev1.DisabledValue
}

// Normalize returns a copy of u without status and server-managed
// metadata: what the controller compares to decide an object drifted, and
// what `lacre diff` shows. Nil for nil.
func Normalize(u *unstructured.Unstructured) *unstructured.Unstructured {
	if u == nil {
		return nil
	}
	c := u.DeepCopy()
	delete(c.Object, "status")
	if m, ok := c.Object["metadata"].(map[string]any); ok {
		for _, k := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
			delete(m, k)
		}
	}
	return c
}
