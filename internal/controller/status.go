package controller

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
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

// markReady sets Ready=True and removes Reconciling and Stalled.
func markReady(conds *[]metav1.Condition, gen int64, reason, msg string) {
	setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionTrue, reason, msg)
	apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
	apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
}

// markFailed sets Ready=False. A stalled failure (no retry until the spec
// changes) sets Stalled=True and removes Reconciling; any other removes
// Stalled and leaves Reconciling, which the frame turns into
// ProgressingWithRetry, as Flux does.
func markFailed(conds *[]metav1.Condition, gen int64, reason, msg string, stalled bool) {
	setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionFalse, reason, msg)
	if stalled {
		apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
		setCondition(conds, gen, meta.StalledCondition, metav1.ConditionTrue, reason, msg)
	} else {
		apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
	}
}

// markProgressing sets Reconciling=True (Progressing, msg) and Ready=Unknown
// (Progressing, readyMsg), as Flux does when a reconcile starts.
func markProgressing(conds *[]metav1.Condition, gen int64, readyMsg, msg string) {
	setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionUnknown, meta.ProgressingReason, readyMsg)
	setCondition(conds, gen, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingReason, msg)
}

// finishStatus applies Flux's end-of-reconcile rules: Ready=True removes
// Reconciling and records observedGeneration; Ready=False turns a
// remaining Reconciling into ProgressingWithRetry. withStalled also
// records observedGeneration on Stalled=True (source-controller's rule;
// kustomize-controller records it on success only).
func finishStatus(conds *[]metav1.Condition, gen int64, observed *int64, withStalled bool) {
	if apimeta.IsStatusConditionTrue(*conds, meta.ReadyCondition) {
		apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
		*observed = gen
		return
	}
	if withStalled && apimeta.IsStatusConditionTrue(*conds, meta.StalledCondition) {
		*observed = gen
	}
	if apimeta.IsStatusConditionFalse(*conds, meta.ReadyCondition) {
		if c := apimeta.FindStatusCondition(*conds, meta.ReconcilingCondition); c != nil {
			c.Reason = meta.ProgressingWithRetryReason
		}
	}
}

// emit records an event carrying metadata (Flux's event metadata, e.g.
// kustomize.toolkit.fluxcd.io/revision) when there is a recorder. With the
// manager's recorder (internal/events) it also goes to --events-addr.
func emit(rec record.EventRecorder, obj runtime.Object, meta map[string]string, typ, reason, msg string) {
	if rec != nil {
		rec.AnnotatedEventf(obj, meta, typ, reason, "%s", msg)
	}
}

// progressKey holds, in a reconcile's context, the function that writes
// the status so far (see progress).
type progressKey struct{}

// progress writes obj's status so far (its Reconciling condition) while
// the reconcile goes on, so `kubectl get` and kstatus see it. obj itself
// is not changed; a failed write is logged and the reconcile goes on.
func progress(ctx context.Context, obj client.Object) {
	if write, ok := ctx.Value(progressKey{}).(func(context.Context, client.Object) error); ok {
		if err := write(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			ctrl.LoggerFrom(ctx).Error(err, "writing the reconcile's progress")
		}
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
// lastHandledReconcileAt, observedGeneration (finishStatus) and the
// gauges and patch the status. During the reconcile, progress writes the
// status so far.
type frame[T statusObject] struct {
	client.Client
	kind      string
	finalizer string
	newObject func() T
	suspended func(T) bool
	// status returns the object's observedGeneration and
	// lastHandledReconcileAt fields.
	status func(T) (observedGeneration *int64, lastHandled *string)
	// conditions returns the object's conditions field.
	conditions func(T) *[]metav1.Condition
	// observeStalled records observedGeneration on Stalled=True too.
	observeStalled bool
	// finalize cleans up on deletion; an error keeps the finalizer.
	finalize  func(context.Context, T) error
	reconcile func(context.Context, T) (ctrl.Result, error)
	// gone, when set, is told that the object is gone or finalized.
	gone func(types.NamespacedName)
}

// forget drops what the process keeps about a gone object.
func (f frame[T]) forget(key types.NamespacedName) {
	forgetObject(f.kind, key.Namespace, key.Name)
	if f.gone != nil {
		f.gone(key)
	}
}

func (f frame[T]) run(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := f.newObject()
	if err := f.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			f.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	start := time.Now()
	if !obj.GetDeletionTimestamp().IsZero() {
		if err := f.finalize(ctx, obj); err != nil {
			observeDuration(f.kind, req.Namespace, req.Name, start)
			return ctrl.Result{}, err
		}
		f.forget(req.NamespacedName)
		if controllerutil.RemoveFinalizer(obj, f.finalizer) {
			return ctrl.Result{}, f.Update(ctx, obj)
		}
		return ctrl.Result{}, nil
	}
	defer observeDuration(f.kind, req.Namespace, req.Name, start)
	if controllerutil.AddFinalizer(obj, f.finalizer) {
		if err := f.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	recordSuspend(f.kind, req.Namespace, req.Name, f.suspended(obj))
	if f.suspended(obj) {
		ctrl.LoggerFrom(ctx).V(1).Info("reconciliation is suspended")
		return ctrl.Result{}, nil
	}
	// base is the status as the API server has it: each write moves it, so
	// the final patch also undoes what progress wrote (Ready=Unknown) when
	// the outcome equals the status before the reconcile.
	base := obj.DeepCopyObject().(client.Object)
	ctx = context.WithValue(ctx, progressKey{}, func(ctx context.Context, o client.Object) error {
		if err := f.Status().Patch(ctx, o.DeepCopyObject().(client.Object), client.MergeFrom(base)); err != nil {
			return err
		}
		base = o.DeepCopyObject().(client.Object)
		return nil
	})
	res, recErr := f.reconcile(ctx, obj)
	observed, handled := f.status(obj)
	if v, ok := obj.GetAnnotations()[meta.ReconcileRequestAnnotation]; ok {
		*handled = v
	}
	finishStatus(f.conditions(obj), obj.GetGeneration(), observed, f.observeStalled)
	recordCondition(f.kind, obj.GetNamespace(), obj.GetName(), obj.GetConditions())
	// No write when nothing changed: the handled-request stamp is a change.
	patch := client.MergeFrom(base)
	if data, err := patch.Data(obj); err == nil && string(data) == "{}" {
		return res, recErr
	}
	if err := f.Status().Patch(ctx, obj, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, errors.Join(recErr, err)
	}
	return res, recErr
}
