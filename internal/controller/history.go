package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/inventory"
)

// OriginRevisionKey is the artifact metadata key of the origin revision
// (an OCI annotation, as Flux reads it for lastAppliedOriginRevision).
const OriginRevisionKey = "org.opencontainers.image.revision"

// appliedDigest is the status.history digest of the built objects:
// "sha256:<hex>" of their JSON, one after the other. Flux hashes its YAML
// build output, so the same manifests have other digests under Flux.
func appliedDigest(objs []*unstructured.Unstructured) string {
	h := sha256.New()
	for _, o := range objs {
		b, err := json.Marshal(o.Object)
		if err != nil {
			// Built objects always marshal; keep the digest defined anyway.
			b = []byte(err.Error())
		}
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// historyMetadata is a snapshot's metadata, as Flux records it.
func historyMetadata(rev, origin string) map[string]string {
	md := map[string]string{"revision": rev}
	if origin != "" {
		md["originRevision"] = origin
	}
	return md
}

// deploy applies objs, prunes and checks health (the phases after the
// build), reporting whether it wrote or deleted anything and which built
// objects the apply skipped (inventory.Skipped).
func (r *KustomizationReconciler) deploy(ctx context.Context, obj *kustomizev1.Kustomization, objs []*unstructured.Unstructured, rev string) (bool, []inventory.Object, *failure) {
	kc, err := r.targetClient(ctx, obj)
	if err != nil {
		if re, ok := err.(errRefused); ok {
			return false, nil, &failure{reason: UnsupportedFieldReason, msg: re.msg, stalled: true}
		}
		return false, nil, fail(kustomizev1.ReconciliationFailedReason, err.Error())
	}
	entries, applied, changed, err := r.apply(ctx, kc, obj, objs)
	if err != nil {
		return changed > 0, nil, fail(kustomizev1.ReconciliationFailedReason, err.Error())
	}
	pruned, f := r.updateInventory(ctx, kc, obj, entries)
	wrote := changed+pruned > 0
	if f != nil {
		return wrote, nil, f
	}
	if obj.Spec.Wait || len(obj.Spec.HealthChecks) > 0 {
		setCondition(&obj.Status.Conditions, obj.Generation, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingReason,
			fmt.Sprintf("Running health checks for revision %s with a timeout of %s", rev, obj.GetTimeout()))
		progress(ctx, obj)
	}
	return wrote, notApplied(objs, applied), r.health(ctx, kc, obj, applied)
}

// notApplied lists the objects of built that applied does not hold.
func notApplied(built, applied []*unstructured.Unstructured) []inventory.Object {
	if len(built) == len(applied) {
		return nil
	}
	in := make(map[inventory.Object]bool, len(applied))
	for _, u := range applied {
		in[inventory.Of(u)] = true
	}
	var out []inventory.Object
	for _, u := range built {
		if !in[inventory.Of(u)] {
			out = append(out, inventory.Of(u))
		}
	}
	return out
}
