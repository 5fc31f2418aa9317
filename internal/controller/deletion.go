package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
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
