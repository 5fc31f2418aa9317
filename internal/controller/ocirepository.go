package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	gcrname "github.com/google/go-containerregistry/pkg/name"
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
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/internal/source/oci"
)

// OCIRepositoryReconciler pulls OCI artifacts from container registries
// and stores the selected layer as an artifact, as Flux's
// source-controller does.
type OCIRepositoryReconciler struct {
	client.Client
	Storage  *artifact.Store
	Recorder record.EventRecorder
	// Limits bound a layer and its unpacked files (artifact.Limits defaults).
	Limits artifact.Limits
	// Budget bounds the bytes all pulls, checkouts and unpacks hold at once
	// (nil: no bound).
	Budget *artifact.Budget
	// Retain is how many older artifacts are kept per object (default 2).
	Retain int
	// Selector, when set, limits the OCIRepositories reconciled
	// (--watch-label-selector); all are cached, for the Kustomizations.
	Selector labels.Selector
}

// SetupWithManager registers the reconciler.
func (r *OCIRepositoryReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	if concurrency < 1 {
		concurrency = 2
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&sourcev1.OCIRepository{}, builder.WithPredicates(sourceTriggers(r.Selector))).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *OCIRepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return frame[*sourcev1.OCIRepository]{
		Client:    r.Client,
		kind:      sourcev1.OCIRepositoryKind,
		finalizer: SourceFinalizer,
		newObject: func() *sourcev1.OCIRepository { return &sourcev1.OCIRepository{} },
		suspended: func(o *sourcev1.OCIRepository) bool { return o.Spec.Suspend },
		status: func(o *sourcev1.OCIRepository) (*int64, *string) {
			return &o.Status.ObservedGeneration, &o.Status.LastHandledReconcileAt
		},
		conditions:     func(o *sourcev1.OCIRepository) *[]metav1.Condition { return &o.Status.Conditions },
		observeStalled: true,
		finalize: func(_ context.Context, o *sourcev1.OCIRepository) error {
			return r.Storage.Delete(sourcev1.OCIRepositoryKind, o.Namespace, o.Name)
		},
		reconcile: r.reconcile,
	}.run(ctx, req)
}

// ociFailure is a failed step: the condition it sets besides Ready=False.
type ociFailure struct {
	cond, reason, msg string
	terminal          bool
}

func (r *OCIRepositoryReconciler) fail(obj *sourcev1.OCIRepository, f *ociFailure, interval time.Duration) ctrl.Result {
	conds, gen := &obj.Status.Conditions, obj.Generation
	if f.cond != "" {
		setCondition(conds, gen, f.cond, metav1.ConditionTrue, f.reason, f.msg)
	}
	markFailed(conds, gen, f.reason, f.msg, f.terminal)
	emit(r.Recorder, obj, nil, corev1.EventTypeWarning, f.reason, f.msg)
	if f.terminal {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: jitter(min(interval, 30*time.Second))}
}

func (r *OCIRepositoryReconciler) reconcile(ctx context.Context, obj *sourcev1.OCIRepository) (ctrl.Result, error) {
	conds, gen := &obj.Status.Conditions, obj.Generation
	interval := obj.Spec.Interval.Duration
	if interval <= 0 {
		interval = time.Minute
	}
	failing := apimeta.FindStatusCondition(*conds, sourcev1.FetchFailedCondition) != nil
	sourceProgress(conds, gen, false, "reconciliation in progress")
	if gen != obj.Status.ObservedGeneration {
		sourceProgress(conds, gen, false, fmt.Sprintf("processing object: new generation %d -> %d", obj.Status.ObservedGeneration, gen))
		progress(ctx, obj)
	}
	if msg := unsupportedOCIField(obj); msg != "" {
		return r.fail(obj, &ociFailure{cond: sourcev1.FetchFailedCondition, reason: UnsupportedFieldReason, msg: msg, terminal: true}, interval), nil
	}
	repo, err := oci.Repository(obj.Spec.URL, obj.Spec.Insecure)
	if err != nil {
		return r.fail(obj, &ociFailure{cond: sourcev1.FetchFailedCondition, reason: sourcev1.URLInvalidReason, msg: err.Error(), terminal: true}, interval), nil
	}
	opts, secrets, f := r.remoteOptions(ctx, obj)
	if f != nil {
		return r.fail(obj, f, interval), nil
	}
	tctx, cancel := context.WithTimeout(ctx, obj.GetTimeout())
	defer cancel()
	ref := oci.Ref{}
	if rr := obj.Spec.Reference; rr != nil {
		ref = oci.Ref{Digest: rr.Digest, SemVer: rr.SemVer, SemverFilter: rr.SemverFilter, Tag: rr.Tag}
	}
	digestRef, revision, err := oci.Resolve(tctx, repo, ref, opts)
	if err != nil {
		return r.fail(obj, &ociFailure{cond: sourcev1.FetchFailedCondition, reason: sourcev1.OCIPullFailedReason,
			msg:      fmt.Sprintf("failed to determine artifact digest: %s", redact.Values(err.Error(), secrets...)),
			terminal: errors.Is(err, oci.ErrInvalidRef)}, interval), nil
	}
	if prev := obj.Status.Artifact; prev != nil && prev.Revision != revision {
		msg := fmt.Sprintf("new revision '%s' for '%s'", revision, revisionRef(digestRef.Context(), revision))
		setCondition(conds, gen, sourcev1.ArtifactOutdatedCondition, metav1.ConditionTrue, sourcev1.NewRevisionReason, msg)
		sourceProgress(conds, gen, true, "building artifact: "+msg)
		progress(ctx, obj)
	}
	if f := r.verify(tctx, obj, repo, digestRef.DigestStr(), revision, opts); f != nil {
		return r.fail(obj, f, interval), nil
	}
	if art := obj.Status.Artifact; art != nil && art.Revision == revision && ociContentUnchanged(obj) && r.Storage.Has(art.Path) {
		apimeta.RemoveStatusCondition(conds, sourcev1.FetchFailedCondition)
		apimeta.RemoveStatusCondition(conds, sourcev1.ArtifactOutdatedCondition)
		markReady(conds, gen, meta.SucceededReason, fmt.Sprintf("stored artifact for digest '%s'", revision))
		if failing {
			r.artifactEvent(obj, meta.SucceededReason)
		}
		return ctrl.Result{RequeueAfter: jitter(interval)}, nil
	}
	data, annotations, release, f := r.pull(ctx, tctx, obj, digestRef, opts, secrets)
	defer release()
	if f != nil {
		return r.fail(obj, f, interval), nil
	}
	apimeta.RemoveStatusCondition(conds, sourcev1.FetchFailedCondition)
	return r.store(ctx, obj, revision, data, annotations, interval, failing)
}

// revisionRef is the reference a revision came from, for messages:
// repo:tag, or repo@digest.
func revisionRef(repo gcrname.Repository, revision string) string {
	if tag, _, ok := strings.Cut(revision, "@"); ok {
		return repo.String() + ":" + tag
	}
	return repo.String() + "@" + revision
}

// ociContentUnchanged says whether the spec fields that shape the
// artifact's content are the ones it was built with.
func ociContentUnchanged(obj *sourcev1.OCIRepository) bool {
	return equalPtr(obj.Spec.Ignore, obj.Status.ObservedIgnore) &&
		layerSelectorEqual(obj.Spec.LayerSelector, obj.Status.ObservedLayerSelector)
}

func layerSelectorEqual(a, b *sourcev1.OCILayerSelector) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// pull reads the layer within the budget and builds the artifact's bytes:
// the layer as is (operation copy) or its files archived again, filtered
// by spec.ignore and .sourceignore files (extract). The bytes stay charged
// until release.
func (r *OCIRepositoryReconciler) pull(ctx, tctx context.Context, obj *sourcev1.OCIRepository, ref gcrname.Digest, opts oci.Options, secrets []string) ([]byte, map[string]string, func(), *ociFailure) {
	var data []byte
	var annotations map[string]string
	var buildErr error
	release, err := r.Budget.Within(ctx, 3*r.Limits.WithDefaults().MaxTotalSize, func(l *artifact.Lease) error {
		layer, err := oci.Pull(tctx, ref, obj.GetLayerMediaType(), opts, r.Limits, l)
		if err != nil {
			return err
		}
		annotations = layer.Annotations
		if obj.GetLayerOperation() == sourcev1.OCILayerCopy {
			data = layer.Data
			return nil
		}
		files, err := artifact.Extract(layer.Data, r.Limits)
		if err != nil {
			buildErr = err
			return nil
		}
		patterns := []gitignore.Pattern{}
		if obj.Spec.Ignore != nil {
			patterns = artifact.ParseIgnore(*obj.Spec.Ignore, nil)
		}
		if data, buildErr = artifact.Build(mapFS(files), patterns, r.Limits); buildErr != nil {
			return nil
		}
		return l.Grow(int64(len(data)))
	})
	if err != nil {
		reason := sourcev1.OCIPullFailedReason
		if errors.Is(err, artifact.ErrTooLarge) {
			reason = sourcev1.ArtifactTooLargeReason
		}
		return nil, nil, release, &ociFailure{cond: sourcev1.FetchFailedCondition, reason: reason,
			msg: fmt.Sprintf("failed to pull artifact from '%s': %s", obj.Spec.URL, redact.Values(err.Error(), secrets...))}
	}
	if buildErr != nil {
		return nil, nil, release, &ociFailure{cond: sourcev1.StorageOperationFailedCondition, reason: sourcev1.OCILayerOperationFailedReason,
			msg: fmt.Sprintf("failed to extract layer contents from artifact: %s", buildErr)}
	}
	return data, annotations, release, nil
}

// store puts the artifact in storage and records it in the status.
func (r *OCIRepositoryReconciler) store(ctx context.Context, obj *sourcev1.OCIRepository, revision string, data []byte, annotations map[string]string, interval time.Duration, failing bool) (ctrl.Result, error) {
	conds, gen := &obj.Status.Conditions, obj.Generation
	stored, err := r.Storage.Put(sourcev1.OCIRepositoryKind, obj.Namespace, obj.Name, data)
	if err != nil {
		msg := "failed to store the artifact: " + err.Error()
		r.fail(obj, &ociFailure{cond: sourcev1.StorageOperationFailedCondition, reason: sourcev1.StorageOperationFailedReason, msg: msg}, interval)
		return ctrl.Result{}, errors.New(msg)
	}
	apimeta.RemoveStatusCondition(conds, sourcev1.StorageOperationFailedCondition)
	apimeta.RemoveStatusCondition(conds, sourcev1.ArtifactOutdatedCondition)
	prev := obj.Status.Artifact
	changed := prev == nil || prev.Digest != stored.Digest || prev.Revision != revision
	if changed {
		size := stored.Size
		obj.Status.Artifact = &meta.Artifact{
			Path: stored.Path, URL: stored.URL, Revision: revision, Digest: stored.Digest,
			LastUpdateTime: metav1.Now(), Size: &size, Metadata: annotations,
		}
	} else {
		obj.Status.Artifact.URL = stored.URL
	}
	obj.Status.URL = stored.URL
	obj.Status.ObservedIgnore = obj.Spec.Ignore
	obj.Status.ObservedLayerSelector = obj.Spec.LayerSelector.DeepCopy()
	if err := r.Storage.GC(sourcev1.OCIRepositoryKind, obj.Namespace, obj.Name, stored.Path, retainOr(r.Retain)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "garbage collecting old artifacts")
	}
	msg := fmt.Sprintf("stored artifact for digest '%s'", revision)
	setCondition(conds, gen, sourcev1.ArtifactInStorageCondition, metav1.ConditionTrue, meta.SucceededReason, msg)
	markReady(conds, gen, meta.SucceededReason, msg)
	switch {
	case changed:
		r.artifactEvent(obj, sourcev1.NewArtifactReason)
	case failing:
		r.artifactEvent(obj, meta.SucceededReason)
	}
	return ctrl.Result{RequeueAfter: jitter(interval)}, nil
}

// artifactEvent records the event of a stored artifact with Flux's
// metadata (revision, digest) and message.
func (r *OCIRepositoryReconciler) artifactEvent(obj *sourcev1.OCIRepository, reason string) {
	art := obj.Status.Artifact
	md := map[string]string{
		sourcev1.GroupVersion.Group + "/" + events.MetaRevisionKey: art.Revision,
		sourcev1.GroupVersion.Group + "/" + events.MetaDigestKey:   art.Digest,
	}
	msg := fmt.Sprintf("stored artifact with revision '%s' from '%s'", art.Revision, obj.Spec.URL)
	src, rev := art.Metadata["org.opencontainers.image.source"], art.Metadata["org.opencontainers.image.revision"]
	if src != "" && rev != "" {
		msg = fmt.Sprintf("%s, origin source '%s', origin revision '%s'", msg, src, rev)
	}
	emit(r.Recorder, obj, md, corev1.EventTypeNormal, reason, msg)
}
