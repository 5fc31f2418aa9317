package inventory

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The order of apply, as Flux's (fluxcd/pkg/ssa): stages, each applied
// and (but the last) waited for before the next; within a stage, kinds in
// a fixed order, then namespace and name.

// Stages of apply.
const (
	// StageDefinitions: CustomResourceDefinitions, Namespaces and
	// ClusterRoles, ready before anything else is applied.
	StageDefinitions = iota
	// StageClasses: kinds named "…Class" (StorageClass, IngressClass,
	// GatewayClass, …), ready before the rest.
	StageClasses
	// StageObjects: everything else.
	StageObjects
)

// Stage returns u's stage of apply.
func Stage(u *unstructured.Unstructured) int {
	kind, av := u.GetKind(), u.GetAPIVersion()
	switch {
	case strings.EqualFold(kind, "CustomResourceDefinition") && strings.HasPrefix(av, "apiextensions.k8s.io/"),
		strings.EqualFold(kind, "Namespace") && av == "v1",
		strings.EqualFold(kind, "ClusterRole") && strings.HasPrefix(av, "rbac.authorization.k8s.io/"):
		return StageDefinitions
	case strings.HasSuffix(kind, "Class"):
		return StageClasses
	}
	return StageObjects
}

// kindOrder ranks kinds: those listed first before unlisted ones, which
// come before the webhook configurations.
var kindOrder = func() map[string]int {
	first := []string{
		"CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterClass", "RuntimeClass",
		"PriorityClass", "StorageClass", "VolumeSnapshotClass", "IngressClass", "GatewayClass",
		"ClusterRoleBinding", "ResourceQuota", "ServiceAccount", "Role", "RoleBinding",
		"ConfigMap", "Secret", "Service", "LimitRange", "Deployment", "StatefulSet", "CronJob",
		"PodDisruptionBudget",
	}
	m := map[string]int{"MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 2}
	for i, k := range first {
		m[k] = i - len(first)
	}
	return m
}()

// applyLess orders a before b: stage, kind rank, group, kind, namespace,
// name.
func applyLess(a, b *unstructured.Unstructured) bool {
	if sa, sb := Stage(a), Stage(b); sa != sb {
		return sa < sb
	}
	oa, ob := Of(a), Of(b)
	if oa.Group != ob.Group || oa.Kind != ob.Kind {
		if ra, rb := kindOrder[oa.Kind], kindOrder[ob.Kind]; ra != rb {
			return ra < rb
		}
		if oa.Group != ob.Group {
			return oa.Group < ob.Group
		}
		return oa.Kind < ob.Kind
	}
	if oa.Namespace != ob.Namespace {
		return oa.Namespace < ob.Namespace
	}
	return oa.Name < ob.Name
}

// SortForApply orders objs in the order they are applied: by stage, then
// kind, namespace and name.
func SortForApply(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool { return applyLess(objs[i], objs[j]) })
}
