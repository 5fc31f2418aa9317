package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/redact"
)

// The prune phase: the new inventory, and the deletion of what the
// build no longer holds (internal/inventory decides what may go).

// updateInventory records entries as the inventory and, with
// spec.prune, prunes what the old one held; it returns how many objects
// it deleted.
func (r *KustomizationReconciler) updateInventory(ctx context.Context, kc client.Client, obj *kustomizev1.Kustomization, entries []kustomizev1.ResourceRef) (int, *failure) {
	var old []kustomizev1.ResourceRef
	if obj.Status.Inventory != nil {
		old = obj.Status.Inventory.Entries
	}
	if entries == nil {
		// The CRD requires the list; an empty build still has one.
		entries = []kustomizev1.ResourceRef{}
	}
	obj.Status.Inventory = &kustomizev1.ResourceInventory{Entries: entries}
	if !obj.Spec.Prune {
		return 0, nil
	}
	pruned, err := r.prune(ctx, kc, obj, old, entries)
	if err != nil {
		return pruned, fail(kustomizev1.PruneFailedReason, err.Error())
	}
	return pruned, nil
}

// prune deletes the objects of old that keep no longer holds and that
// inventory.Prunable lets go.
func (r *KustomizationReconciler) prune(ctx context.Context, kc client.Client, obj *kustomizev1.Kustomization, old, keep []kustomizev1.ResourceRef) (int, error) {
	n := 0
	err := inventory.Stale(ctx, kc, inventory.OwnerOf(obj), old, keep, apierrors.IsNotFound, func(id string, live *unstructured.Unstructured) error {
		if err := kc.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("pruning %s: %s", id, redact.Error(err))
		}
		n++
		return nil
	})
	return n, err
}
