package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/testsupport"
)

// The floor: what the API server takes to receive the same work with no
// controller logic at all. A minimal client, at the controllers'
// concurrency, server-side applies each app's ConfigMap, Service,
// Deployment and (decrypted) Secret and writes one Kustomization status
// (the applied revision, Ready, a four-entry inventory and history, as
// lacre writes); then, for the resync's floor, the request annotation and
// one more status write each.
// It works in a namespace of its own (floorNS) on Kustomizations of its
// own, deleted before the controllers start, in the same run.

const floorNS = "floor"

// floor measures the apply floor and the status-write floor.
func (r *scaleRun) floor(ctx context.Context) error {
	cnt := &testsupport.RequestCounter{}
	c, err := r.countingClient(cnt)
	if err != nil {
		return err
	}
	if err := r.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: floorNS}}); err != nil {
		return err
	}
	ks := make([]client.Object, r.n)
	for i := range ks {
		ks[i] = r.kustomization(floorNS, i)
	}
	if err := parallel(ctx, ks, 16, func(o client.Object) error { return r.c.Create(ctx, o) }); err != nil {
		return err
	}
	t := time.Now()
	if err := parallel(ctx, ks, r.cfg.concurrent, func(o client.Object) error { return r.floorApply(ctx, c, o.(*kustomizev1.Kustomization)) }); err != nil {
		return fmt.Errorf("floor apply: %w", err)
	}
	r.res.FloorApply = time.Since(t)
	r.res.reqFloor = cnt.Snapshot()
	// The resync's floor: the request annotation (the driver's 16 workers,
	// as in the resync) and one status write each.
	t = time.Now()
	token := t.Format(time.RFC3339Nano)
	if err := parallel(ctx, ks, 16, func(o client.Object) error { return r.annotate(ctx, o, token) }); err != nil {
		return err
	}
	if err := parallel(ctx, ks, r.cfg.concurrent, func(o client.Object) error {
		k := o.(*kustomizev1.Kustomization)
		base := k.DeepCopy()
		k.Status.LastHandledReconcileAt = token
		return c.Status().Patch(ctx, k, client.MergeFrom(base))
	}); err != nil {
		return fmt.Errorf("floor status: %w", err)
	}
	r.res.FloorStatus = time.Since(t)
	return r.c.DeleteAllOf(ctx, &kustomizev1.Kustomization{}, client.InNamespace(floorNS))
}

// floorApply applies app k's objects and writes k's status as lacre
// would after applying them.
func (r *scaleRun) floorApply(ctx context.Context, c client.Client, k *kustomizev1.Kustomization) error {
	i := appIndex(k.Name)
	var entries []kustomizev1.ResourceRef
	for _, doc := range appDocs(i, fmt.Sprintf("initial-%d", i)) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return err
		}
		u.SetNamespace(floorNS)
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("floor"), client.ForceOwnership); err != nil {
			return err
		}
		gvk := u.GroupVersionKind()
		entries = append(entries, kustomizev1.ResourceRef{ID: inventory.Object{Namespace: floorNS, Name: u.GetName(), Group: gvk.Group, Kind: gvk.Kind}.ID(), Version: gvk.Version})
	}
	base := k.DeepCopy()
	rev := "main@sha1:" + r.repo.initialRev
	now := metav1.Now()
	k.Status.ObservedGeneration = k.Generation
	k.Status.LastAppliedRevision, k.Status.LastAttemptedRevision = rev, rev
	k.Status.Inventory = &kustomizev1.ResourceInventory{Entries: entries}
	apimeta.SetStatusCondition(&k.Status.Conditions, metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue,
		Reason: kustomizev1.ReconciliationSucceededReason, Message: "Applied revision: " + rev, ObservedGeneration: k.Generation})
	k.Status.History.Upsert("sha256:0000000000000000000000000000000000000000000000000000000000000000", now, metav1.Duration{Duration: time.Second},
		kustomizev1.ReconciliationSucceededReason, map[string]string{"revision": rev})
	return c.Status().Patch(ctx, k, client.MergeFrom(base))
}
