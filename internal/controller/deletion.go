package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/redact"
)

// terminationPoll is how often WaitForTermination looks at the deleted
// objects (Flux's 2 s).
const terminationPoll = 2 * time.Second

// deletesOnFinalize reports whether deleting obj deletes its objects, as
// Flux decides: never when suspended or with an empty inventory; else by
// spec.deletionPolicy (MirrorPrune follows spec.prune).
func deletesOnFinalize(obj *kustomizev1.Kustomization) bool {
	if obj.Spec.Suspend || obj.Status.Inventory == nil || len(obj.Status.Inventory.Entries) == 0 {
		return false
	}
	switch obj.GetDeletionPolicy() {
	case kustomizev1.DeletionPolicyMirrorPrune:
		return obj.Spec.Prune
	case kustomizev1.DeletionPolicyDelete, kustomizev1.DeletionPolicyWaitForTermination:
		return true
	}
	return false
}

// finalize deletes a deleted Kustomization's objects when its deletion
// policy asks for it and, with WaitForTermination, waits (up to the
// timeout) until they are gone. A failed deletion or wait is logged and
// leaves the objects in place.
func (r *KustomizationReconciler) finalize(ctx context.Context, obj *kustomizev1.Kustomization) error {
	if !deletesOnFinalize(obj) {
		return nil
	}
	log := ctrl.LoggerFrom(ctx)
	kc, err := r.targetClient(ctx, obj)
	if err != nil {
		// As Flux: kept, and retried.
		return err
	}
	var deleted []*unstructured.Unstructured
	err = inventory.Stale(ctx, kc, inventory.OwnerOf(obj), obj.Status.Inventory.Entries, nil, apierrors.IsNotFound, func(id string, live *unstructured.Unstructured) error {
		if err := kc.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("pruning %s: %s", id, redact.Error(err))
		}
		deleted = append(deleted, live)
		return nil
	})
	if err != nil {
		log.Error(err, "pruning on deletion failed; objects are left in place")
		return nil
	}
	if obj.GetDeletionPolicy() != kustomizev1.DeletionPolicyWaitForTermination || len(deleted) == 0 {
		return nil
	}
	if err := waitTerminated(ctx, kc, deleted, obj.GetTimeout()); err != nil {
		log.Error(err, "failed to wait for resources termination")
		r.event(obj, obj.Status.LastAppliedRevision, corev1.EventTypeWarning, "failed to wait for resources termination", nil)
	}
	return nil
}

// waitTerminated polls until none of objs exists any more (the same UID),
// or timeout passes.
func waitTerminated(ctx context.Context, kc client.Client, objs []*unstructured.Unstructured, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, terminationPoll, timeout, true, func(ctx context.Context) (bool, error) {
		for _, o := range objs {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(o.GroupVersionKind())
			err := kc.Get(ctx, client.ObjectKeyFromObject(o), live)
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return false, nil
			case live.GetUID() == o.GetUID():
				return false, nil
			}
		}
		return true, nil
	})
}
