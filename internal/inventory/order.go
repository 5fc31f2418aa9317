package inventory

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	// StageCustom: the kinds of StageKinds (Flux's
	// --custom-apply-stage-kinds), applied before the rest, not waited for.
	StageCustom
	// StageObjects: everything else.
	StageObjects
)

// StageKinds are the kinds given a stage of their own (StageCustom).
type StageKinds map[schema.GroupKind]bool

// ParseStageKinds reads Flux's --custom-apply-stage-kinds:
// comma-separated "group/Kind", or "Kind" for the core group.
func ParseStageKinds(s string) (StageKinds, error) {
	out := StageKinds{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		group, kind, ok := strings.Cut(item, "/")
		if !ok {
			group, kind = "", item
		}
		if kind == "" || strings.Contains(kind, "/") {
			return nil, fmt.Errorf("%q is not group/Kind", item)
		}
		out[schema.GroupKind{Group: group, Kind: kind}] = true
	}
	return out, nil
}

// Stage returns u's stage of apply, given the custom stage's kinds.
func Stage(u *unstructured.Unstructured, custom StageKinds) int {
	kind, av := u.GetKind(), u.GetAPIVersion()
	switch {
	case strings.EqualFold(kind, "CustomResourceDefinition") && strings.HasPrefix(av, "apiextensions.k8s.io/"),
		strings.EqualFold(kind, "Namespace") && av == "v1",
		strings.EqualFold(kind, "ClusterRole") && strings.HasPrefix(av, "rbac.authorization.k8s.io/"):
		return StageDefinitions
	case strings.HasSuffix(kind, "Class"):
		return StageClasses
	case custom[u.GroupVersionKind().GroupKind()]:
		return StageCustom
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
func applyLess(a, b *unstructured.Unstructured, custom StageKinds) bool {
	if sa, sb := Stage(a, custom), Stage(b, custom); sa != sb {
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

// SortForApply orders objs in the order they are applied: by stage (with
// the custom stage's kinds), then kind, namespace and name.
func SortForApply(objs []*unstructured.Unstructured, custom StageKinds) {
	sort.SliceStable(objs, func(i, j int) bool { return applyLess(objs[i], objs[j], custom) })
}
