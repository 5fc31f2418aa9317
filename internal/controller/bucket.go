package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/events"
	"github.com/lacre/lacre/internal/source/bucket"
)

// BucketReconciler fetches the objects of S3-compatible buckets and
// stores them as artifacts, as Flux's source-controller does for a
// Bucket.
type BucketReconciler struct {
	client.Client
	Storage  *artifact.Store
	Recorder record.EventRecorder
	// Limits bound a bucket's objects and their artifact.
	Limits artifact.Limits
	// Budget bounds the bytes all fetches hold at once (nil: no bound),
	// shared with the other controllers.
	Budget *artifact.Budget
	// Jitter is the fraction of the interval added at random (default 0.05).
	Jitter float64
	// Retain is how many older artifacts are kept per object (default 2).
	Retain int
	// Selector, when set, limits the Buckets reconciled
	// (--watch-label-selector); all are cached, for the Kustomizations.
	Selector labels.Selector
}

// SetupWithManager registers the reconciler.
func (r *BucketReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	if concurrency < 1 {
		concurrency = 2
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&sourcev1.Bucket{}, builder.WithPredicates(sourceTriggers(r.Selector))).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *BucketReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return frame[*sourcev1.Bucket]{
		Client:    r.Client,
		kind:      sourcev1.BucketKind,
		finalizer: SourceFinalizer,
		newObject: func() *sourcev1.Bucket { return &sourcev1.Bucket{} },
		suspended: func(o *sourcev1.Bucket) bool { return o.Spec.Suspend },
		status: func(o *sourcev1.Bucket) (*int64, *string) {
			return &o.Status.ObservedGeneration, &o.Status.LastHandledReconcileAt
		},
		conditions:     func(o *sourcev1.Bucket) *[]metav1.Condition { return &o.Status.Conditions },
		observeStalled: true,
		finalize: func(_ context.Context, o *sourcev1.Bucket) error {
			return r.Storage.Delete(sourcev1.BucketKind, o.Namespace, o.Name)
		},
		reconcile: r.reconcile,
	}.run(ctx, req)
}

func (r *BucketReconciler) jitter(d time.Duration) time.Duration {
	j := r.Jitter
	if j == 0 {
		j = 0.05
	}
	return d + time.Duration(rand.Float64()*j*float64(d))
}

func (r *BucketReconciler) reconcile(ctx context.Context, obj *sourcev1.Bucket) (ctrl.Result, error) {
	conds, gen := &obj.Status.Conditions, obj.Generation
	interval := obj.Spec.Interval.Duration
	if interval <= 0 {
		interval = time.Minute
	}
	failing := slices.ContainsFunc(fetchFailures, func(t string) bool { return apimeta.FindStatusCondition(*conds, t) != nil })
	sourceProgress(conds, gen, false, "reconciliation in progress")
	if gen != obj.Status.ObservedGeneration {
		sourceProgress(conds, gen, false, fmt.Sprintf("processing object: new generation %d -> %d", obj.Status.ObservedGeneration, gen))
		progress(ctx, obj)
	}
	if msg := bucketUnsupportedField(obj); msg != "" {
		r.fetchFailed(obj, UnsupportedFieldReason, msg, true)
		return ctrl.Result{}, nil // terminal: waits for a spec change
	}
	cl, secrets, err := r.bucketClient(ctx, obj)
	if err != nil {
		r.fetchFailed(obj, sourcev1.AuthenticationFailedReason, redactBucket(err, secrets), false)
		return ctrl.Result{RequeueAfter: r.jitter(interval)}, nil
	}
	ictx, cancel := context.WithTimeout(ctx, obj.GetTimeout())
	idx, err := cl.Index(ictx, r.Limits)
	cancel()
	if err != nil {
		return r.bucketFailed(obj, err, secrets, interval), nil
	}
	revision := idx.Revision()
	if art := obj.Status.Artifact; art != nil && art.Revision == revision && r.Storage.Has(art.Path) {
		apimeta.RemoveStatusCondition(conds, sourcev1.FetchFailedCondition)
		apimeta.RemoveStatusCondition(conds, sourcev1.ArtifactOutdatedCondition)
		msg := fmt.Sprintf("stored artifact: revision '%s'", art.Revision)
		setCondition(conds, gen, sourcev1.ArtifactInStorageCondition, metav1.ConditionTrue, meta.SucceededReason, msg)
		markReady(conds, gen, meta.SucceededReason, msg)
		if failing {
			r.artifactEvent(obj, meta.SucceededReason, idx.Len())
		}
		return ctrl.Result{RequeueAfter: r.jitter(interval)}, nil
	}
	msg := fmt.Sprintf("new upstream revision '%s'", revision)
	if obj.Status.Artifact != nil {
		setCondition(conds, gen, sourcev1.ArtifactOutdatedCondition, metav1.ConditionTrue, sourcev1.NewRevisionReason, msg)
	}
	sourceProgress(conds, gen, true, "building artifact: "+msg)
	progress(ctx, obj)
	data, release, err := r.fetch(ctx, obj.GetTimeout(), cl, idx)
	defer release()
	if err != nil {
		return r.bucketFailed(obj, err, secrets, interval), nil
	}
	apimeta.RemoveStatusCondition(conds, sourcev1.FetchFailedCondition)
	return r.storeBucketArtifact(ctx, obj, idx, data, interval, failing)
}

// fetch downloads the indexed objects and packages them within the
// budget; both stay charged until release. Each attempt has timeout;
// waiting for the budget is bounded by ctx only.
func (r *BucketReconciler) fetch(ctx context.Context, timeout time.Duration, cl *bucket.Client, idx *bucket.Index) ([]byte, func(), error) {
	var data []byte
	release, err := r.Budget.Within(ctx, bucket.FetchWorst(r.Limits), func(l *artifact.Lease) error {
		fctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		files, err := cl.Fetch(fctx, idx, r.Limits, l)
		if err != nil {
			return err
		}
		if data, err = artifact.BuildAll(files, r.Limits); err != nil {
			return err
		}
		if err := l.Grow(int64(len(data))); err != nil {
			data = nil
			return err
		}
		return nil
	})
	return data, release, err
}

// storeBucketArtifact stores the packaged objects and records the
// artifact, with a NewArtifact event when it changed (or a Succeeded
// event when it recovers from a failure).
func (r *BucketReconciler) storeBucketArtifact(ctx context.Context, obj *sourcev1.Bucket, idx *bucket.Index, data []byte, interval time.Duration, failing bool) (ctrl.Result, error) {
	conds, gen := &obj.Status.Conditions, obj.Generation
	stored, err := r.Storage.Put(sourcev1.BucketKind, obj.Namespace, obj.Name, data)
	if err != nil {
		msg := "unable to archive artifact to storage: " + err.Error()
		setCondition(conds, gen, sourcev1.StorageOperationFailedCondition, metav1.ConditionTrue, sourcev1.StorageOperationFailedReason, msg)
		markFailed(conds, gen, sourcev1.StorageOperationFailedReason, msg, false)
		emit(r.Recorder, obj, nil, corev1.EventTypeWarning, sourcev1.StorageOperationFailedReason, msg)
		return ctrl.Result{}, errors.New(msg)
	}
	apimeta.RemoveStatusCondition(conds, sourcev1.StorageOperationFailedCondition)
	apimeta.RemoveStatusCondition(conds, sourcev1.ArtifactOutdatedCondition)
	revision := idx.Revision() // with the ETags fetched
	prev := obj.Status.Artifact
	changed := prev == nil || prev.Digest != stored.Digest || prev.Revision != revision
	if changed {
		size := stored.Size
		obj.Status.Artifact = &meta.Artifact{
			Path: stored.Path, URL: stored.URL, Revision: revision, Digest: stored.Digest,
			LastUpdateTime: metav1.Now(), Size: &size,
		}
	} else {
		obj.Status.Artifact.URL = stored.URL
	}
	obj.Status.URL = stored.URL
	obj.Status.ObservedIgnore = obj.Spec.Ignore
	if err := r.Storage.GC(sourcev1.BucketKind, obj.Namespace, obj.Name, stored.Path, r.retain()); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "garbage collecting old artifacts")
	}
	msg := fmt.Sprintf("stored artifact: revision '%s'", revision)
	setCondition(conds, gen, sourcev1.ArtifactInStorageCondition, metav1.ConditionTrue, meta.SucceededReason, msg)
	markReady(conds, gen, meta.SucceededReason, msg)
	switch {
	case changed:
		r.artifactEvent(obj, sourcev1.NewArtifactReason, idx.Len())
	case failing:
		r.artifactEvent(obj, meta.SucceededReason, idx.Len())
	}
	return ctrl.Result{RequeueAfter: r.jitter(interval)}, nil
}

// artifactEvent records Flux's event of a stored artifact, with the
// revision and digest metadata.
func (r *BucketReconciler) artifactEvent(obj *sourcev1.Bucket, reason string, files int) {
	art := obj.Status.Artifact
	md := map[string]string{
		sourcev1.GroupVersion.Group + "/" + events.MetaRevisionKey: art.Revision,
		sourcev1.GroupVersion.Group + "/" + events.MetaDigestKey:   art.Digest,
	}
	msg := fmt.Sprintf("stored artifact with %d fetched files from '%s' bucket", files, obj.Spec.BucketName)
	emit(r.Recorder, obj, md, corev1.EventTypeNormal, reason, msg)
}

// fetchFailed records FetchFailed=True and Ready=False with reason.
func (r *BucketReconciler) fetchFailed(obj *sourcev1.Bucket, reason, msg string, stalled bool) {
	conds, gen := &obj.Status.Conditions, obj.Generation
	setCondition(conds, gen, sourcev1.FetchFailedCondition, metav1.ConditionTrue, reason, msg)
	markFailed(conds, gen, reason, msg, stalled)
	emit(r.Recorder, obj, nil, corev1.EventTypeWarning, reason, msg)
}

// bucketFailed records a failed listing or download: reason
// BucketOperationFailed as in Flux, or ArtifactTooLarge when the objects
// exceed the controller's limits (retried at the interval).
func (r *BucketReconciler) bucketFailed(obj *sourcev1.Bucket, err error, secrets []string, interval time.Duration) ctrl.Result {
	reason := sourcev1.BucketOperationFailedReason
	if errors.Is(err, artifact.ErrTooLarge) {
		reason = sourcev1.ArtifactTooLargeReason
	}
	r.fetchFailed(obj, reason, redactBucket(err, secrets), false)
	if reason == sourcev1.ArtifactTooLargeReason {
		return ctrl.Result{RequeueAfter: r.jitter(interval)}
	}
	return ctrl.Result{RequeueAfter: r.jitter(min(interval, 30*time.Second))}
}

func (r *BucketReconciler) retain() int {
	if r.Retain == 0 {
		return 2
	}
	return r.Retain
}
