package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/events"
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/internal/source"
)

// SourceFinalizer is set on sources so their artifacts are removed on
// deletion.
const SourceFinalizer = "finalizers.fluxcd.io"

// GitRepositoryReconciler fetches Git repositories and stores their trees
// as artifacts.
type GitRepositoryReconciler struct {
	client.Client
	Storage  *artifact.Store
	Recorder record.EventRecorder
	// Limits bound a checkout and its artifact (artifact.Limits defaults).
	Limits artifact.Limits
	// Budget bounds the bytes all checkouts hold at once (nil: no bound),
	// shared with the Kustomization controller's Fetcher.
	Budget *artifact.Budget
	// Jitter is the fraction of the interval added at random (default 0.05).
	Jitter float64
	// Retain is how many older artifacts are kept per object (default 2).
	Retain int
	// Selector, when set, limits the GitRepositories reconciled
	// (--watch-label-selector); all are cached, for the Kustomizations.
	Selector labels.Selector
}

// SetupWithManager registers the reconciler.
func (r *GitRepositoryReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	if concurrency < 1 {
		concurrency = 2
	}
	triggers := sourceTriggers(r.Selector)
	return ctrl.NewControllerManagedBy(mgr).
		For(&sourcev1.GitRepository{}, builder.WithPredicates(triggers)).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.includersOf), builder.WithPredicates(artifactChanged{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
}

// sourceTriggers is what reconciles a source: a new generation or a
// reconcile request and, when sharded (--watch-label-selector), only for
// the objects the selector matches, a label change that brings an object
// into this shard being a trigger too.
func sourceTriggers(sel labels.Selector) predicate.Predicate {
	triggers := predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, requestedAtChanged{})
	if sel != nil {
		triggers = predicate.And(selected(sel), predicate.Or(triggers, becameSelected(sel)))
	}
	return triggers
}

// selected passes the objects sel matches.
func selected(sel labels.Selector) predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool { return sel.Matches(labels.Set(o.GetLabels())) })
}

// becameSelected passes an update whose new labels sel matches and whose
// old ones it did not.
func becameSelected(sel labels.Selector) predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !sel.Matches(labels.Set(e.ObjectOld.GetLabels())) && sel.Matches(labels.Set(e.ObjectNew.GetLabels()))
	}}
}

func (r *GitRepositoryReconciler) jitter(d time.Duration) time.Duration {
	j := r.Jitter
	if j == 0 {
		j = 0.05
	}
	return d + time.Duration(rand.Float64()*j*float64(d))
}

// Reconcile implements reconcile.Reconciler.
func (r *GitRepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return frame[*sourcev1.GitRepository]{
		Client:    r.Client,
		kind:      sourcev1.GitRepositoryKind,
		finalizer: SourceFinalizer,
		newObject: func() *sourcev1.GitRepository { return &sourcev1.GitRepository{} },
		suspended: func(o *sourcev1.GitRepository) bool { return o.Spec.Suspend },
		status: func(o *sourcev1.GitRepository) (*int64, *string) {
			return &o.Status.ObservedGeneration, &o.Status.LastHandledReconcileAt
		},
		conditions:     func(o *sourcev1.GitRepository) *[]metav1.Condition { return &o.Status.Conditions },
		observeStalled: true,
		finalize: func(_ context.Context, o *sourcev1.GitRepository) error {
			return r.Storage.Delete(sourcev1.GitRepositoryKind, o.Namespace, o.Name)
		},
		reconcile: r.reconcile,
	}.run(ctx, req)
}

// sourceProgress sets Reconciling=True with msg and, as Flux's
// source-controller does, Ready=Unknown too when there is no Ready
// condition yet, it is Unknown, or drift (a new revision) is found.
func sourceProgress(conds *[]metav1.Condition, gen int64, drift bool, msg string) {
	setCondition(conds, gen, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingReason, msg)
	if c := apimeta.FindStatusCondition(*conds, meta.ReadyCondition); drift || c == nil || c.Status == metav1.ConditionUnknown {
		setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionUnknown, meta.ProgressingReason, msg)
	}
}

// fetchFailures are the conditions whose removal is a recovery (an event).
var fetchFailures = []string{sourcev1.FetchFailedCondition, sourcev1.StorageOperationFailedCondition}

func (r *GitRepositoryReconciler) reconcile(ctx context.Context, obj *sourcev1.GitRepository) (ctrl.Result, error) {
	conds := &obj.Status.Conditions
	gen := obj.Generation
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
	if err := source.ValidateURL(obj.Spec.URL); err != nil {
		setCondition(conds, gen, sourcev1.FetchFailedCondition, metav1.ConditionTrue, sourcev1.URLInvalidReason, err.Error())
		markFailed(conds, gen, sourcev1.URLInvalidReason, err.Error(), true)
		emit(r.Recorder, obj, nil, corev1.EventTypeWarning, sourcev1.URLInvalidReason, err.Error())
		return ctrl.Result{}, nil // terminal: waits for a spec change
	}
	if r.refuseUnsupported(obj) {
		return ctrl.Result{}, nil // terminal: waits for a spec change
	}

	var auth *source.Auth
	if ref := obj.Spec.SecretRef; ref != nil {
		sec := &corev1.Secret{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, sec); err != nil {
			msg := fmt.Sprintf("failed to get secret '%s/%s': %v", obj.Namespace, ref.Name, redact.Reason(err))
			setCondition(conds, gen, sourcev1.FetchFailedCondition, metav1.ConditionTrue, sourcev1.AuthenticationFailedReason, msg)
			markFailed(conds, gen, sourcev1.AuthenticationFailedReason, msg, false)
			emit(r.Recorder, obj, nil, corev1.EventTypeWarning, sourcev1.AuthenticationFailedReason, msg)
			return ctrl.Result{RequeueAfter: r.jitter(interval)}, nil
		}
		auth = source.AuthFromSecret(sec.Data)
	}
	auth, ok := r.withProxy(ctx, obj, auth)
	if !ok {
		return ctrl.Result{RequeueAfter: r.jitter(min(interval, 30*time.Second))}, nil
	}
	ref := source.Ref{}
	if rr := obj.Spec.Reference; rr != nil {
		ref = source.Ref{Branch: rr.Branch, Tag: rr.Tag, SemVer: rr.SemVer, Name: rr.Name, Commit: rr.Commit}
	}
	incl, err := r.fetchIncludes(ctx, obj)
	if e := (*includeUnavailable)(nil); errors.As(err, &e) {
		markIncludeUnavailable(obj, e)
		return ctrl.Result{RequeueAfter: r.jitter(30 * time.Second)}, nil
	}
	timeout := obj.GetTimeout()
	gctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The no-op check: same remote revision, same spec, artifact present.
	if art := obj.Status.Artifact; art != nil && apimeta.IsStatusConditionTrue(*conds, sourcev1.ArtifactInStorageCondition) &&
		obj.Status.ObservedGeneration == gen && contentConfigUnchanged(obj, incl) && r.Storage.Has(art.Path) && !requiresVerification(obj) {
		if _, rev, err := source.LsRemote(gctx, obj.Spec.URL, ref, auth); err == nil && rev == art.Revision {
			apimeta.RemoveStatusCondition(conds, sourcev1.FetchFailedCondition)
			apimeta.RemoveStatusCondition(conds, sourcev1.ArtifactOutdatedCondition)
			markReady(conds, gen, meta.SucceededReason, fmt.Sprintf("stored artifact for revision '%s'", art.Revision))
			if failing {
				r.artifactEvent(obj, meta.SucceededReason)
			}
			return ctrl.Result{RequeueAfter: r.jitter(interval)}, nil
		}
	}

	var patterns = artifact.ParseIgnore(artifact.DefaultIgnore, nil)
	if obj.Spec.Ignore != nil {
		patterns = artifact.ParseIgnore(*obj.Spec.Ignore, nil)
	}
	// The wait for the byte budget is not part of the Git timeout.
	commit, data, release, err := r.checkout(ctx, timeout, obj, ref, auth, patterns, r.prepare(obj, incl))
	defer release()
	if commit == nil {
		return r.checkoutFailed(obj, err, auth, interval), nil
	}
	apimeta.RemoveStatusCondition(conds, sourcev1.FetchFailedCondition)
	if res, ok := r.verifySignature(ctx, obj, commit, interval); !ok {
		return res, nil
	}
	if prev := obj.Status.Artifact; prev == nil || prev.Revision != commit.Revision {
		msg := fmt.Sprintf("new upstream revision '%s'", commit.Revision)
		if prev != nil {
			setCondition(conds, gen, sourcev1.ArtifactOutdatedCondition, metav1.ConditionTrue, sourcev1.NewRevisionReason, msg)
		}
		sourceProgress(conds, gen, true, "building artifact: "+msg)
		progress(ctx, obj)
	}
	if obj.Status.IncludedArtifacts != nil && !includesEqual(obj.Status.IncludedArtifacts, incl) {
		setCondition(conds, gen, sourcev1.ArtifactOutdatedCondition, metav1.ConditionTrue, "IncludeChange", "included artifacts differ from last observed includes")
	}
	return r.storeArtifact(ctx, obj, commit, data, err, incl, interval, failing)
}

// artifactEvent records the event of a stored artifact, with Flux's
// metadata: source.toolkit.fluxcd.io/revision and .../digest.
func (r *GitRepositoryReconciler) artifactEvent(obj *sourcev1.GitRepository, reason string) {
	art := obj.Status.Artifact
	md := map[string]string{
		sourcev1.GroupVersion.Group + "/" + events.MetaRevisionKey: art.Revision,
		sourcev1.GroupVersion.Group + "/" + events.MetaDigestKey:   art.Digest,
	}
	emit(r.Recorder, obj, md, corev1.EventTypeNormal, reason, fmt.Sprintf("stored artifact for commit '%s'", art.Revision))
}

// storeArtifact stores the packaged tree (data, or the packaging error)
// and records it in the status, with a NewArtifact event when it changed
// (or a Succeeded event when it recovers from a failure).
func (r *GitRepositoryReconciler) storeArtifact(ctx context.Context, obj *sourcev1.GitRepository, commit *source.Commit, data []byte, err error, incl []*meta.Artifact, interval time.Duration, failing bool) (ctrl.Result, error) {
	conds, gen := &obj.Status.Conditions, obj.Generation
	if ice := (*includeCopyError)(nil); errors.As(err, &ice) {
		reason := "CopyFailure"
		if errors.Is(err, artifact.ErrTooLarge) {
			reason = sourcev1.ArtifactTooLargeReason
		}
		setCondition(conds, gen, sourcev1.StorageOperationFailedCondition, metav1.ConditionTrue, reason, ice.err.Error())
		markFailed(conds, gen, reason, ice.err.Error(), false)
		emit(r.Recorder, obj, nil, corev1.EventTypeWarning, reason, ice.err.Error())
		return ctrl.Result{RequeueAfter: r.jitter(interval)}, nil
	}
	if err != nil {
		msg, reason := "failed to package the artifact: "+err.Error(), sourcev1.StorageOperationFailedReason
		if errors.Is(err, artifact.ErrTooLarge) {
			reason = sourcev1.ArtifactTooLargeReason
		}
		markFailed(conds, gen, reason, msg, errors.Is(err, artifact.ErrTooLarge))
		emit(r.Recorder, obj, nil, corev1.EventTypeWarning, reason, msg)
		return ctrl.Result{RequeueAfter: r.jitter(interval)}, nil
	}
	stored, err := r.Storage.Put(sourcev1.GitRepositoryKind, obj.Namespace, obj.Name, data)
	if err != nil {
		msg := "failed to store the artifact: " + err.Error()
		setCondition(conds, gen, sourcev1.StorageOperationFailedCondition, metav1.ConditionTrue, sourcev1.StorageOperationFailedReason, msg)
		markFailed(conds, gen, sourcev1.StorageOperationFailedReason, msg, false)
		emit(r.Recorder, obj, nil, corev1.EventTypeWarning, sourcev1.StorageOperationFailedReason, msg)
		return ctrl.Result{}, errors.New(msg)
	}
	apimeta.RemoveStatusCondition(conds, sourcev1.StorageOperationFailedCondition)
	apimeta.RemoveStatusCondition(conds, sourcev1.ArtifactOutdatedCondition)
	prev := obj.Status.Artifact
	changed := prev == nil || prev.Digest != stored.Digest || prev.Revision != commit.Revision
	if changed {
		size := stored.Size
		obj.Status.Artifact = &meta.Artifact{
			Path: stored.Path, URL: stored.URL, Revision: commit.Revision, Digest: stored.Digest,
			LastUpdateTime: metav1.Now(), Size: &size,
		}
	} else {
		obj.Status.Artifact.URL = stored.URL
	}
	obj.Status.ObservedIgnore = obj.Spec.Ignore
	r.observeContent(obj, incl)
	if err := r.Storage.GC(sourcev1.GitRepositoryKind, obj.Namespace, obj.Name, stored.Path, r.retain()); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "garbage collecting old artifacts")
	}
	msg := fmt.Sprintf("stored artifact for revision '%s'", commit.Revision)
	setCondition(conds, gen, sourcev1.ArtifactInStorageCondition, metav1.ConditionTrue, meta.SucceededReason, msg)
	markReady(conds, gen, meta.SucceededReason, msg)
	switch {
	case changed:
		r.artifactEvent(obj, sourcev1.NewArtifactReason)
	case failing:
		r.artifactEvent(obj, meta.SucceededReason)
	}
	return ctrl.Result{RequeueAfter: r.jitter(interval)}, nil
}

// prepare trims a checkout's tree (sparseCheckout) and adds the included
// artifacts; a failed copy is a packaging error, any other a checkout
// failure.
func (r *GitRepositoryReconciler) prepare(obj *sourcev1.GitRepository, incl []*meta.Artifact) func(*source.Commit) error {
	return func(c *source.Commit) error {
		var err error
		if c.Files, err = sparseFilter(c.Files, obj.Spec.SparseCheckout); err != nil {
			return err // a checkout failure
		}
		if err := r.applyIncludes(obj, c.Files, incl); err != nil {
			return &includeCopyError{err}
		}
		return nil
	}
}

// checkout checks out the commit of obj's spec.url (with its submodules
// when spec.recurseSubmodules is set) and packages its files, within the
// budget: both stay charged until release (after the artifact is stored).
// Each attempt has timeout; waiting for the budget is bounded by ctx only.
// A nil commit means the checkout failed; a commit with an error, the
// packaging.
func (r *GitRepositoryReconciler) checkout(ctx context.Context, timeout time.Duration, obj *sourcev1.GitRepository, ref source.Ref, auth *source.Auth, patterns []gitignore.Pattern, prepare func(*source.Commit) error) (*source.Commit, []byte, func(), error) {
	var commit *source.Commit
	var data []byte
	var buildErr error
	release, err := r.Budget.Within(ctx, source.CheckoutWorst(r.Limits), func(l *artifact.Lease) error {
		gctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var err error
		if obj.Spec.RecurseSubmodules {
			commit, err = source.CheckoutRecursive(gctx, obj.Spec.URL, ref, auth, r.Limits, l, sparseWants(obj.Spec.SparseCheckout))
		} else {
			commit, err = source.CheckoutCharging(gctx, obj.Spec.URL, ref, auth, r.Limits, l)
		}
		if err != nil {
			commit = nil
			return err
		}
		if err := prepare(commit); err != nil {
			if ice := (*includeCopyError)(nil); errors.As(err, &ice) {
				buildErr = err
				return nil
			}
			commit = nil
			return err
		}
		if data, buildErr = artifact.Build(commit.Files, patterns, r.Limits); buildErr != nil {
			return nil
		}
		if err := l.Grow(int64(len(data))); err != nil {
			commit, data = nil, nil
			return err
		}
		return nil
	})
	if err != nil {
		return nil, nil, release, err
	}
	return commit, data, release, buildErr
}

// includeCopyError is a failure to copy an included artifact into the
// tree (reason CopyFailure, or ArtifactTooLarge).
type includeCopyError struct{ err error }

func (e *includeCopyError) Error() string { return e.err.Error() }
func (e *includeCopyError) Unwrap() error { return e.err }

// checkoutFailed records a failed checkout and says when to retry.
func (r *GitRepositoryReconciler) checkoutFailed(obj *sourcev1.GitRepository, err error, auth *source.Auth, interval time.Duration) ctrl.Result {
	conds, gen := &obj.Status.Conditions, obj.Generation
	reason := sourcev1.GitOperationFailedReason
	switch {
	case errors.Is(err, source.ErrAuth) || errors.Is(err, source.ErrInvalidSecret):
		reason = sourcev1.AuthenticationFailedReason
	case errors.Is(err, artifact.ErrTooLarge):
		reason = sourcev1.ArtifactTooLargeReason
	}
	msg := "failed to checkout and determine revision: " + redactAuth(err, auth)
	setCondition(conds, gen, sourcev1.FetchFailedCondition, metav1.ConditionTrue, reason, msg)
	terminal := errors.Is(err, source.ErrInvalidRef) || errors.Is(err, source.ErrInvalidSecret)
	markFailed(conds, gen, reason, msg, terminal)
	emit(r.Recorder, obj, nil, corev1.EventTypeWarning, reason, msg)
	switch {
	case terminal:
		return ctrl.Result{}
	case reason == sourcev1.ArtifactTooLargeReason, errors.Is(err, source.ErrSubmodule):
		return ctrl.Result{RequeueAfter: r.jitter(interval)} // until a new commit
	}
	return ctrl.Result{RequeueAfter: r.jitter(min(interval, 30*time.Second))}
}

func (r *GitRepositoryReconciler) retain() int {
	if r.Retain == 0 {
		return 2
	}
	return r.Retain
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// redactAuth is err's text without the Git credentials it may quote.
func redactAuth(err error, a *source.Auth) string {
	if a == nil {
		return err.Error()
	}
	return redact.Values(err.Error(), a.Password, a.BearerToken, a.Proxy.Password)
}
