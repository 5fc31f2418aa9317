package controller

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/lacre/lacre/api/meta"
)

// maxMessage bounds condition messages (Flux trims at 20,000 characters).
const maxMessage = 20000

func trim(msg string) string {
	if len(msg) > maxMessage {
		return msg[:maxMessage-3] + "..."
	}
	return msg
}

func setCondition(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: trim(msg), ObservedGeneration: gen})
}

func markReady(conds *[]metav1.Condition, gen int64, reason, msg string) {
	setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionTrue, reason, msg)
	apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
	apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
}

func markFailed(conds *[]metav1.Condition, gen int64, reason, msg string, stalled bool) {
	setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionFalse, reason, msg)
	apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
	if stalled {
		setCondition(conds, gen, meta.StalledCondition, metav1.ConditionTrue, reason, msg)
	} else {
		apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
	}
}

// emit records an event when there is a recorder.
func emit(rec record.EventRecorder, obj runtime.Object, typ, reason, msg string) {
	if rec != nil {
		rec.Event(obj, typ, reason, msg)
	}
}

// requestedAtChanged triggers on a new reconcile.fluxcd.io/requestedAt.
type requestedAtChanged struct{ predicate.Funcs }

func (requestedAtChanged) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetAnnotations()[meta.ReconcileRequestAnnotation] != e.ObjectNew.GetAnnotations()[meta.ReconcileRequestAnnotation]
}

// statusObject is a GitRepository or a Kustomization, as the reconcile
// frame sees it.
type statusObject interface {
	client.Object
	GetConditions() []metav1.Condition
}

// frame is the part of a reconcile both controllers share: get the
// object, run finalize and drop the finalizer on deletion, add the
// finalizer, skip a suspended object, and after reconcile record
// lastHandledReconcileAt, observedGeneration and the Ready gauge and patch
// the status.
type frame[T statusObject] struct {
	client.Client
	kind      string
	finalizer string
	newObject func() T
	suspended func(T) bool
	// status returns the object's observedGeneration and
	// lastHandledReconcileAt fields.
	status func(T) (observedGeneration *int64, lastHandled *string)
	// finalize cleans up on deletion; an error keeps the finalizer.
	finalize  func(context.Context, T) error
	reconcile func(context.Context, T) (ctrl.Result, error)
}

func (f frame[T]) run(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := f.newObject()
	if err := f.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			forgetObject(f.kind, req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	defer observeDuration(f.kind, time.Now())
	if !obj.GetDeletionTimestamp().IsZero() {
		if err := f.finalize(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
		if controllerutil.RemoveFinalizer(obj, f.finalizer) {
			return ctrl.Result{}, f.Update(ctx, obj)
		}
		return ctrl.Result{}, nil
	}
	if controllerutil.AddFinalizer(obj, f.finalizer) {
		if err := f.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	if f.suspended(obj) {
		ctrl.LoggerFrom(ctx).V(1).Info("reconciliation is suspended")
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	observed, handled := f.status(obj)
	if v, ok := obj.GetAnnotations()[meta.ReconcileRequestAnnotation]; ok {
		*handled = v
	}
	res, recErr := f.reconcile(ctx, obj)
	*observed = obj.GetGeneration()
	recordCondition(f.kind, obj.GetNamespace(), obj.GetName(), obj.GetConditions())
	if err := f.Status().Patch(ctx, obj, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, errors.Join(recErr, err)
	}
	return res, recErr
}
