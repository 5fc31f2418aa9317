// Package inventory owns a Kustomization's inventory and the rules the
// Kustomization controller applies and prunes by, so that the controller
// and `lacre diff` (which predicts it) cannot disagree:
//
//   - the entry IDs of status.inventory, in cli-utils' ObjMetadata format
//     ("<namespace>_<name>_<group>_<kind>", ':' in RBAC names written as
//     "__"), which Flux and `flux tree` read;
//   - the owner labels set on every applied object;
//   - the annotations that leave an object alone (reconcile: disabled,
//     ssa: Ignore or IfNotPresent, prune: disabled): ShouldApply and
//     Prunable.
//
// It is the only place inventory IDs are built or parsed.
package inventory

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

const (
	// fieldSeparator separates an ID's fields (cli-utils).
	fieldSeparator = "_"
	// colonTranscoded stands for ':' in the names of RBAC objects
	// (cli-utils), which may hold one, as "system:controller:x".
	colonTranscoded = "__"
	rbacGroup       = "rbac.authorization.k8s.io"
)

// ErrMalformedID is returned for an inventory ID that is not
// "<namespace>_<name>_<group>_<kind>".
var ErrMalformedID = errors.New("malformed inventory id")

// Object identifies an object in an inventory, without its version
// (cli-utils' ObjMetadata).
type Object struct {
	Namespace, Name, Group, Kind string
}

// Of returns the inventory object of u.
func Of(u *unstructured.Unstructured) Object {
	gvk := u.GroupVersionKind()
	return Object{Namespace: u.GetNamespace(), Name: u.GetName(), Group: gvk.Group, Kind: gvk.Kind}
}

// isRBAC reports whether o is of a kind whose names may hold ':'.
func (o Object) isRBAC() bool {
	if o.Group != rbacGroup {
		return false
	}
	switch o.Kind {
	case "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
		return true
	}
	return false
}

// ID is o's inventory ID, as cli-utils formats it.
func (o Object) ID() string {
	name := o.Name
	if o.isRBAC() {
		name = strings.ReplaceAll(name, ":", colonTranscoded)
	}
	return o.Namespace + fieldSeparator + name + fieldSeparator + o.Group + fieldSeparator + o.Kind
}

// String names o for people: Kind/namespace/name, or Kind/name for a
// cluster-scoped object.
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// GroupVersionKind is o's kind at version.
func (o Object) GroupVersionKind(version string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: o.Group, Version: version, Kind: o.Kind}
}

// Parse reads an inventory ID as cli-utils does: the namespace up to the
// first '_', the kind and group after the last two, the name in between
// with "__" read as ':'. IDs written before the escaping (a raw ':') parse
// to the same object.
func Parse(id string) (Object, error) {
	bad := func() (Object, error) {
		return Object{}, fmt.Errorf("%w %q: want namespace_name_group_kind", ErrMalformedID, id)
	}
	ns, rest, ok := strings.Cut(id, fieldSeparator)
	if !ok {
		return bad()
	}
	i := strings.LastIndex(rest, fieldSeparator)
	if i < 0 {
		return bad()
	}
	rest, kind := rest[:i], rest[i+1:]
	i = strings.LastIndex(rest, fieldSeparator)
	if i < 0 {
		return bad()
	}
	name, group := strings.ReplaceAll(rest[:i], colonTranscoded, ":"), rest[i+1:]
	if name == "" || kind == "" || strings.Contains(name, fieldSeparator) {
		return bad()
	}
	return Object{Namespace: ns, Name: name, Group: group, Kind: kind}, nil
}

// Entry is u's status.inventory entry.
func Entry(u *unstructured.Unstructured) kustomizev1.ResourceRef {
	return kustomizev1.ResourceRef{ID: Of(u).ID(), Version: u.GroupVersionKind().Version}
}
