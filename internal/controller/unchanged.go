package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/inventory"
)

// Unchanged builds (docs/api.md, "Unchanged builds and drift"): the
// controller remembers, in memory, what each Kustomization's last full
// apply applied: its UID and generation, the digest of the built objects
// (after decryption and substitution), the inventory it recorded and
// when it ended. A later reconcile whose build has the same digest, with
// the same inventory in the status, Ready at that generation and less
// than spec.interval after that apply, skips the dry runs, applies and
// pruning: it records the (maybe new) revision and checks health, if
// asked to. Every spec.interval a reconcile applies in full (drift
// correction, as Flux), and after a restart the first one does.

// appliedRecord is what a Kustomization's last full apply left.
type appliedRecord struct {
	uid        types.UID
	generation int64
	digest     string // appliedDigest of the built objects
	inventory  string // inventoryDigest of the inventory recorded
	skipped    []inventory.Object
	at         time.Time // when the apply ended
}

// appliedMemo holds the appliedRecord of each Kustomization by key.
type appliedMemo struct {
	mu sync.Mutex
	m  map[types.NamespacedName]appliedRecord
}

func (m *appliedMemo) get(k types.NamespacedName) (appliedRecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.m[k]
	return rec, ok
}

func (m *appliedMemo) put(k types.NamespacedName, rec appliedRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[types.NamespacedName]appliedRecord{}
	}
	m.m[k] = rec
}

func (m *appliedMemo) forget(k types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, k)
}

// inventoryDigest is a digest of an inventory's entries, in order.
func inventoryDigest(inv *kustomizev1.ResourceInventory) string {
	if inv == nil {
		return ""
	}
	h := sha256.New()
	for _, e := range inv.Entries {
		h.Write([]byte(e.ID))
		h.Write([]byte{0})
		h.Write([]byte(e.Version))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// remember records a successful full apply of obj (its status holds the
// new inventory); skipped are the built objects the apply skipped.
func (r *KustomizationReconciler) remember(obj *kustomizev1.Kustomization, digest string, skipped []inventory.Object) {
	r.applied.put(types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}, appliedRecord{
		uid: obj.UID, generation: obj.Generation, digest: digest,
		inventory: inventoryDigest(obj.Status.Inventory), skipped: skipped, at: time.Now(),
	})
}

// unchangedSince returns the record of obj's last full apply when this
// reconcile may skip applying: the same object and generation, the same
// build digest and inventory, Ready at this generation, no spec.kubeConfig
// (its Secret may name another cluster), within spec.interval of that apply
// and, with FullApplyOnRequest, no new reconcile request.
func (r *KustomizationReconciler) unchangedSince(obj *kustomizev1.Kustomization, digest string, ready bool) (appliedRecord, bool) {
	rec, ok := r.applied.get(types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name})
	switch {
	case !ok, !ready, obj.Spec.KubeConfig != nil,
		rec.uid != obj.UID, rec.generation != obj.Generation, rec.digest != digest,
		rec.inventory != inventoryDigest(obj.Status.Inventory),
		time.Since(rec.at) >= obj.Spec.Interval.Duration:
		return rec, false
	case r.FullApplyOnRequest && requested(obj):
		return rec, false
	}
	return rec, true
}

// requested says whether obj carries a reconcile request it has not
// handled yet.
func requested(obj *kustomizev1.Kustomization) bool {
	v, ok := obj.GetAnnotations()[meta.ReconcileRequestAnnotation]
	return ok && v != obj.Status.LastHandledReconcileAt
}

// recordUnchanged ends a reconcile whose build is what the last full apply
// applied: the conditions as they were before the reconcile, Ready with
// the revision; a history entry when the revision is new or a reconcile
// was requested (no status write otherwise); the health checks, if any.
// It requeues when the next full apply is due.
func (r *KustomizationReconciler) recordUnchanged(ctx context.Context, obj *kustomizev1.Kustomization, rec appliedRecord, conds []metav1.Condition, objs []*unstructured.Unstructured, rev, origin, digest string, start time.Time) (ctrl.Result, *failure) {
	obj.Status.Conditions = conds
	if obj.Spec.Wait || len(obj.Spec.HealthChecks) > 0 {
		kc, err := r.targetClient(ctx, obj)
		if err != nil {
			return ctrl.Result{}, fail(kustomizev1.ReconciliationFailedReason, err.Error())
		}
		applied := slices.DeleteFunc(slices.Clone(objs), func(u *unstructured.Unstructured) bool {
			return slices.Contains(rec.skipped, inventory.Of(u))
		})
		if f := r.health(ctx, kc, obj, applied); f != nil {
			r.applied.forget(types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name})
			return ctrl.Result{}, f
		}
	}
	if obj.Status.LastAppliedRevision != rev || requested(obj) {
		obj.Status.History.Upsert(digest, metav1.Now(), metav1.Duration{Duration: time.Since(start)}, kustomizev1.ReconciliationSucceededReason, historyMetadata(rev, origin))
	}
	obj.Status.LastAppliedOriginRevision = origin
	obj.Status.LastAppliedRevision = rev
	markReady(&obj.Status.Conditions, obj.Generation, kustomizev1.ReconciliationSucceededReason, "Applied revision: "+rev)
	UnchangedBuilds.Inc()
	return ctrl.Result{RequeueAfter: max(time.Until(rec.at.Add(obj.Spec.Interval.Duration)), time.Second)}, nil
}

// readyAt says whether obj is Ready at its current generation.
func readyAt(obj *kustomizev1.Kustomization) bool {
	return apimeta.IsStatusConditionTrue(obj.Status.Conditions, meta.ReadyCondition) && obj.Status.ObservedGeneration == obj.Generation
}
