package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/redact"
)

// The apply phase: server-side apply of the built objects, in stages,
// writing only what changed.

// apply server-side applies the objects in stages, writing only objects
// whose dry-run result differs from the live object. It returns the new
// inventory and how many objects it wrote.
func (r *KustomizationReconciler) apply(ctx context.Context, kc client.Client, obj *kustomizev1.Kustomization, objs []*unstructured.Unstructured) ([]kustomizev1.ResourceRef, int, error) {
	inventory.SortForApply(objs)
	owner := inventory.OwnerOf(obj)
	var entries []kustomizev1.ResourceRef
	written := 0
	for _, u := range objs {
		entries = append(entries, inventory.Entry(u))
		if inventory.Ignored(u) {
			continue
		}
		owner.Label(u)
		wrote, err := applyOne(ctx, kc, u, obj.Spec.Force)
		if err != nil {
			return nil, written, err
		}
		if wrote {
			written++
		}
	}
	return entries, written, nil
}

// applyOne applies u unless the rules or a no-op dry run say not to; it
// reports whether it wrote. force recreates an object whose change the
// API server refuses as immutable.
func applyOne(ctx context.Context, kc client.Client, u *unstructured.Unstructured, force bool) (bool, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(u.GroupVersionKind())
	err := kc.Get(ctx, client.ObjectKeyFromObject(u), live)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("%s/%s: %s", u.GetKind(), u.GetName(), redact.Error(err))
	}
	if !inventory.ShouldApply(u, exists) {
		return false, nil
	}
	if exists {
		dry := u.DeepCopy()
		if err := kc.Patch(ctx, dry, client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll); err == nil && !drifted(live, dry) {
			return false, nil
		}
	}
	if err := kc.Patch(ctx, u.DeepCopy(), client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		force = force || strings.EqualFold(u.GetAnnotations()[kustomizev1.ForceAnnotation], "enabled")
		if force && exists && (apierrors.IsInvalid(err) || strings.Contains(err.Error(), "immutable")) {
			if derr := kc.Delete(ctx, live); derr == nil || apierrors.IsNotFound(derr) {
				err = kc.Patch(ctx, u.DeepCopy(), client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership)
			}
		}
		if err != nil {
			return false, fmt.Errorf("%s/%s/%s apply failed: %s", u.GetKind(), u.GetNamespace(), u.GetName(), redact.Error(err))
		}
	}
	return true, nil
}

// drifted compares the dry-run result with the live object, ignoring
// server-managed metadata and status.
func drifted(live, dry *unstructured.Unstructured) bool {
	a, err1 := json.Marshal(inventory.Normalize(live).Object)
	b, err2 := json.Marshal(inventory.Normalize(dry).Object)
	return err1 != nil || err2 != nil || string(a) != string(b)
}
