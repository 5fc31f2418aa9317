package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/ssa"
)

// The apply phase: server-side apply of the built objects as Flux's
// kustomize-controller does it (internal/ssa: stages, whole-stage dry
// runs, kubectl's fields taken over, forced recreation, spec.ignore's
// drift-ignore rules).

// apply applies the objects and returns the new inventory (every built
// object, skipped ones too), the objects it did not skip (what spec.wait
// checks) and how many objects it wrote.
func (r *KustomizationReconciler) apply(ctx context.Context, kc client.Client, obj *kustomizev1.Kustomization, objs []*unstructured.Unstructured) ([]kustomizev1.ResourceRef, []*unstructured.Unstructured, int, error) {
	owner := inventory.OwnerOf(obj)
	for _, u := range objs {
		owner.Label(u)
	}
	changes, err := ssa.Apply(ctx, kc, objs, ssa.Options{
		FieldManager:     fieldOwner,
		Force:            obj.Spec.Force,
		Timeout:          obj.GetTimeout(),
		OverrideManagers: r.OverrideManagers,
		StageKinds:       r.CustomStageKinds,
		Ignore:           obj.Spec.Ignore,
	})
	written := 0
	for _, ch := range changes {
		if ch.Action == ssa.Created || ch.Action == ssa.Configured {
			written++
		}
	}
	if err != nil {
		return nil, nil, written, err
	}
	entries := make([]kustomizev1.ResourceRef, 0, len(changes))
	var applied []*unstructured.Unstructured
	for _, ch := range changes {
		entries = append(entries, inventory.Entry(ch.Object))
		if ch.Action != ssa.Skipped {
			applied = append(applied, ch.Object)
		}
	}
	return entries, applied, written, nil
}
