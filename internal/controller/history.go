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
// build), reporting whether it wrote or deleted anything.
func (r *KustomizationReconciler) deploy(ctx context.Context, obj *kustomizev1.Kustomization, objs []*unstructured.Unstructured, rev string) (bool, *failure) {
	kc, err := r.targetClient(ctx, obj)
	if err != nil {
		if re, ok := err.(errRefused); ok {
			return false, &failure{reason: UnsupportedFieldReason, msg: re.msg, stalled: true}
		}
		return false, fail(kustomizev1.ReconciliationFailedReason, err.Error())
	}
	entries, applied, changed, err := r.apply(ctx, kc, obj, objs)
	if err != nil {
		return changed > 0, fail(kustomizev1.ReconciliationFailedReason, err.Error())
	}
	pruned, f := r.updateInventory(ctx, kc, obj, entries)
	wrote := changed+pruned > 0
	if f != nil {
		return wrote, f
	}
	if obj.Spec.Wait || len(obj.Spec.HealthChecks) > 0 {
		setCondition(&obj.Status.Conditions, obj.Generation, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingReason,
			fmt.Sprintf("Running health checks for revision %s with a timeout of %s", rev, obj.GetTimeout()))
		progress(ctx, obj)
	}
	return wrote, r.health(ctx, kc, obj, applied)
}
