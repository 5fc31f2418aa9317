package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/redact"
)

// The prune phase: the new inventory, and the deletion of what the
// build no longer holds (internal/inventory decides what may go); and
// the pruning of everything when a Kustomization is deleted.

// updateInventory records entries as the inventory and, with
// spec.prune, prunes what the old one held; it returns how many objects
// it deleted. As in Flux, an object whose deletion failed stays in the
// inventory (after the new entries), so the next reconcile retries it.
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
	pruned, survivors, err := r.prune(ctx, kc, obj, old, entries, nil)
	if err != nil {
		obj.Status.Inventory.Entries = append(entries, survivors...)
		return pruned, fail(kustomizev1.PruneFailedReason, err.Error())
	}
	return pruned, nil
}

// prune deletes the objects of old that keep no longer holds and that
// inventory.Prunable lets go. It goes on past a failed deletion and
// returns the entries it could not delete with the errors. The objects it
// deleted are added to deleted, when not nil.
func (r *KustomizationReconciler) prune(ctx context.Context, kc client.Client, obj *kustomizev1.Kustomization, old, keep []kustomizev1.ResourceRef, deleted *[]*unstructured.Unstructured) (int, []kustomizev1.ResourceRef, error) {
	n := 0
	survivors, err := inventory.Stale(ctx, kc, inventory.OwnerOf(obj), old, keep, apierrors.IsNotFound, func(id string, live *unstructured.Unstructured) error {
		if err := kc.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("pruning %s: %s", id, redact.Error(err))
		}
		n++
		if deleted != nil {
			*deleted = append(*deleted, live)
		}
		return nil
	})
	return n, survivors, err
}

// finalize deletes a deleted Kustomization's objects when its
// deletionPolicy asks for it (deletesOnFinalize: MirrorPrune follows
// spec.prune; never when suspended) and, with WaitForTermination, waits
// (up to the timeout) until they are gone. A failed deletion keeps the
// finalizer and is retried (the error goes to the work queue's backoff).
// When the service account to impersonate is gone (deleted with the
// namespace, say), the objects are left in place and the finalizer
// removed, as in Flux.
func (r *KustomizationReconciler) finalize(ctx context.Context, obj *kustomizev1.Kustomization) error {
	if !deletesOnFinalize(obj) {
		return nil
	}
	// The account is checked locally; on a spec.kubeConfig cluster it is
	// the remote cluster's.
	if sa := r.impersonated(obj); sa != "" && obj.Spec.KubeConfig == nil {
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: sa}, &corev1.ServiceAccount{})
		if apierrors.IsNotFound(err) {
			msg := fmt.Sprintf("unable to prune objects: service account %q not found; %d objects left in place", sa, len(obj.Status.Inventory.Entries))
			ctrl.LoggerFrom(ctx).Error(err, msg)
			emit(r.Recorder, obj, nil, corev1.EventTypeWarning, kustomizev1.PruneFailedReason, msg)
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading service account %q: %s", sa, redact.Error(err))
		}
	}
	kc, err := r.targetClient(ctx, obj)
	if err != nil {
		return err // as Flux: kept, and retried
	}
	var deleted []*unstructured.Unstructured
	n, _, err := r.prune(ctx, kc, obj, obj.Status.Inventory.Entries, nil, &deleted)
	if err != nil {
		emit(r.Recorder, obj, nil, corev1.EventTypeWarning, kustomizev1.PruneFailedReason, "pruning for deleted resource failed: "+err.Error())
		return err
	}
	if n > 0 {
		emit(r.Recorder, obj, nil, corev1.EventTypeNormal, "Pruned", fmt.Sprintf("pruned %d objects of the deleted Kustomization", n))
	}
	if obj.GetDeletionPolicy() == kustomizev1.DeletionPolicyWaitForTermination && len(deleted) > 0 {
		if err := waitTerminated(ctx, kc, deleted, obj.GetTimeout()); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "failed to wait for resources termination")
			r.event(obj, obj.Status.LastAppliedRevision, corev1.EventTypeWarning, "failed to wait for resources termination", nil)
		}
	}
	return nil
}
