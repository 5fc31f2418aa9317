package inventory

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// Labels set on every applied object: the Kustomization that owns it.
const (
	NameLabel      = "kustomize.toolkit.fluxcd.io/name"
	NamespaceLabel = "kustomize.toolkit.fluxcd.io/namespace"
)

// Values of kustomizev1.SSAAnnotation (Flux's), as a label or an
// annotation, in any case. Override (the default) takes over what kubectl
// changed; Merge keeps it; Ignore leaves the object alone; IfNotPresent
// creates it only.
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

// Has reports whether u carries key=value as a label or an annotation,
// the value compared case-insensitively: how Flux reads its apply, prune
// and force policies (ssa.AnyInMetadata). False for nil.
func Has(u *unstructured.Unstructured, key, value string) bool {
	if u == nil {
		return false
	}
	if v := u.GetLabels()[key]; v != "" && strings.EqualFold(v, value) {
		return true
	}
	v := u.GetAnnotations()[key]
	return v != "" && strings.EqualFold(v, value)
}

// Ignored reports whether the controller leaves u alone: reconcile:
// disabled or ssa: Ignore. It stays in the inventory, but is neither
// applied, waited for, nor pruned. Flux reads it on both the object from
// Git and the live one; see ShouldApply.
func Ignored(u *unstructured.Unstructured) bool {
	return Has(u, kustomizev1.ReconcileAnnotation, kustomizev1.DisabledValue) || Has(u, kustomizev1.SSAAnnotation, SSAIgnore)
}

// ShouldApply reports whether the built object u is applied, given its
// live object (nil when absent): not when either is Ignored, nor when it
// exists and u says ssa: IfNotPresent (read on u only, as Flux does).
func ShouldApply(u, live *unstructured.Unstructured) bool {
	if Ignored(u) || Ignored(live) {
		return false
	}
	return live == nil || !Has(u, kustomizev1.SSAAnnotation, SSAIfNotPresent)
}

// Forced reports whether the live object is deleted and created again
// when applying u fails on an immutable field: spec.force (force), or
// force: enabled on u or on the live object.
func Forced(u, live *unstructured.Unstructured, force bool) bool {
	return force || Has(u, kustomizev1.ForceAnnotation, kustomizev1.EnabledValue) || Has(live, kustomizev1.ForceAnnotation, kustomizev1.EnabledValue)
}

// TakesOver reports whether, before applying u, the controller takes
// over the fields of kubectl's field managers and drops the
// last-applied-configuration annotation (Flux's default, Override): not
// when u or its live object says ssa: Merge, which keeps what other tools
// added.
func TakesOver(u, live *unstructured.Unstructured) bool {
	return !Has(u, kustomizev1.SSAAnnotation, SSAMerge) && !Has(live, kustomizev1.SSAAnnotation, SSAMerge)
}

// Prunable reports whether the live object, gone from the build, is
// deleted: it carries owner's labels, is not Ignored, and does not say
// prune: disabled.
func Prunable(live *unstructured.Unstructured, owner Owner) bool {
	return owner.Owns(live) && !Ignored(live) && !Has(live, kustomizev1.PruneAnnotation, kustomizev1.DisabledValue)
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
