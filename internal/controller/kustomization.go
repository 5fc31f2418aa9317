package controller

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/events"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/keys"
)

const (
	fieldOwner     = "kustomize-controller"
	sourceIndexKey = ".metadata.source"
)

// KustomizationReconciler builds, decrypts and applies Kustomizations.
type KustomizationReconciler struct {
	client.Client
	APIReader client.Reader
	Fetcher   *artifact.Fetcher
	Recorder  record.EventRecorder
	KeyCache  *keys.Cache
	// RequireEncryptedSecrets refuses Secrets committed without SOPS.
	RequireEncryptedSecrets bool
	// Decryption configures default and ambient keys.
	Decryption DecryptionOptions
	// Build holds the flags that change builds.
	Build BuildOptions
	// NoCrossNamespaceRefs refuses a Kustomization whose sourceRef or
	// dependsOn names another namespace (Ready=False, Stalled,
	// AccessDenied). postBuild.substituteFrom and the decryption Secret have
	// no namespace field: they are always read in the Kustomization's own
	// namespace.
	NoCrossNamespaceRefs bool
	// AdditiveCELDependencyCheck: a dependsOn[].readyExpr adds to the
	// built-in readiness check instead of replacing it (Flux's gate).
	AdditiveCELDependencyCheck bool
	// AllowExternalArtifact lets a sourceRef name an ExternalArtifact
	// (Flux's ExternalArtifact feature gate, off by default).
	AllowExternalArtifact bool
	// DefaultServiceAccount, when set, is impersonated (in the
	// Kustomization's namespace) for Kustomizations without
	// spec.serviceAccountName, so no tenant applies with the controller's
	// own rights.
	DefaultServiceAccount string
	// OverrideManagers, CustomStageKinds: see Options.
	OverrideManagers []string
	CustomStageKinds inventory.StageKinds
	// DependencyRequeue is when a Kustomization waiting for its
	// dependencies or its source's artifact is tried again
	// (--requeue-dependency, Flux's default 30 s when 0).
	DependencyRequeue time.Duration
	// KubeConfig: what a spec.kubeConfig kubeconfig may use.
	KubeConfig KubeConfigOptions
	// Config and Direct reach the API server without the cache, for the
	// applied objects (any kind: no informer per kind); Config is also the
	// base of impersonating clients for spec.serviceAccountName.
	Config *rest.Config
	Direct client.Client
	// watches starts the source kinds' watches.
	watches *sourceWatches
	// unwraps counts cache misses (for tests and the benchmark).
	unwraps atomic.Int64
}

// Unwraps returns the number of real key unwraps so far.
func (r *KustomizationReconciler) Unwraps() int64 { return r.unwraps.Load() }

// SetupWithManager registers the reconciler and its source watch.
func (r *KustomizationReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, concurrency int) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &kustomizev1.Kustomization{}, sourceIndexKey, func(o client.Object) []string {
		return []string{sourceIndexValue(o.(*kustomizev1.Kustomization))}
	}); err != nil {
		return err
	}
	if concurrency < 1 {
		concurrency = 4
	}
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&kustomizev1.Kustomization{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, requestedAtChanged{}))).
		Watches(&sourcev1.GitRepository{}, r.sourceHandler(), builder.WithPredicates(artifactChanged{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Build(r)
	if err != nil {
		return err
	}
	// The other kinds' watches start when first needed (getSource).
	r.watches = &sourceWatches{ctrl: c, cache: mgr.GetCache(), started: map[string]bool{sourcev1.GitRepositoryKind: true}}
	return nil
}

// targetClient is the client for applied objects, on the cluster of
// spec.kubeConfig or the local one: impersonating spec.serviceAccountName
// when set, else the --default-service-account, so RBAC limits what a
// tenant applies; the controller's own identity (or the kubeconfig's)
// only when neither is set.
func (r *KustomizationReconciler) targetClient(ctx context.Context, obj *kustomizev1.Kustomization) (client.Client, error) {
	sa := r.impersonated(obj)
	if obj.Spec.KubeConfig != nil {
		cfg, err := r.remoteConfig(ctx, obj)
		if err != nil {
			return nil, err
		}
		if sa != "" {
			cfg.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", obj.Namespace, sa)}
		}
		// The remote cluster's kinds: a mapper of its own.
		return client.New(cfg, client.Options{Scheme: r.Direct.Scheme()})
	}
	if sa == "" {
		return r.Direct, nil
	}
	cfg := rest.CopyConfig(r.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", obj.Namespace, sa)}
	return client.New(cfg, client.Options{Scheme: r.Direct.Scheme(), Mapper: r.Direct.RESTMapper()})
}

// impersonated is the service account targetClient impersonates ("" for
// none).
func (r *KustomizationReconciler) impersonated(obj *kustomizev1.Kustomization) string {
	if sa := obj.Spec.ServiceAccountName; sa != "" {
		return sa
	}
	return r.DefaultServiceAccount
}

// Reconcile implements reconcile.Reconciler.
func (r *KustomizationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return frame[*kustomizev1.Kustomization]{
		Client:    r.Client,
		kind:      kustomizev1.KustomizationKind,
		finalizer: kustomizev1.KustomizationFinalizer,
		newObject: func() *kustomizev1.Kustomization { return &kustomizev1.Kustomization{} },
		suspended: func(o *kustomizev1.Kustomization) bool { return o.Spec.Suspend },
		status: func(o *kustomizev1.Kustomization) (*int64, *string) {
			return &o.Status.ObservedGeneration, &o.Status.LastHandledReconcileAt
		},
		conditions: func(o *kustomizev1.Kustomization) *[]metav1.Condition { return &o.Status.Conditions },
		finalize:   r.finalize,
		reconcile:  r.reconcile,
	}.run(ctx, req)
}

// A failure ends a reconcile: Ready=False with its reason and message.
type failure struct {
	reason, msg string
	// stalled failures wait for a spec change: Stalled=True, no retry.
	stalled bool
	// after is when to retry (0: the retry interval).
	after time.Duration
	// notice, when set, replaces the Warning event with a Normal one
	// with this message; quiet records no event (Flux's choices for a
	// missing source or artifact and for dependencies not ready).
	notice string
	quiet  bool
}

func fail(reason, msg string) *failure { return &failure{reason: reason, msg: msg} }

// requeueDependency is DependencyRequeue or Flux's default.
func (r *KustomizationReconciler) requeueDependency() time.Duration {
	if r.DependencyRequeue > 0 {
		return r.DependencyRequeue
	}
	return 30 * time.Second
}

// event records an event about obj as Flux's kustomize-controller does:
// its reason is the Ready condition's and revision, when known, is in its
// metadata as kustomize.toolkit.fluxcd.io/revision.
func (r *KustomizationReconciler) event(obj *kustomizev1.Kustomization, revision, typ, msg string, md map[string]string) {
	if md == nil {
		md = map[string]string{}
	}
	if revision != "" {
		md[kustomizev1.GroupVersion.Group+"/"+events.MetaRevisionKey] = revision
	}
	reason := events.SeverityInfo
	if typ == corev1.EventTypeWarning {
		reason = events.SeverityError
	}
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, meta.ReadyCondition); c != nil && c.Reason != "" {
		reason = c.Reason
	}
	emit(r.Recorder, obj, md, typ, reason, msg)
}

// reconcile runs the phases: source, build (with decryption), apply,
// prune, health, and records the outcome in the status.
func (r *KustomizationReconciler) reconcile(ctx context.Context, obj *kustomizev1.Kustomization) (ctrl.Result, error) {
	res, rev, f := r.phases(ctx, obj)
	if f == nil {
		return res, nil
	}
	markFailed(&obj.Status.Conditions, obj.Generation, f.reason, f.msg, f.stalled)
	switch {
	case f.quiet:
	case f.notice != "":
		r.event(obj, rev, corev1.EventTypeNormal, f.notice, nil)
	case f.stalled:
		r.event(obj, "", corev1.EventTypeWarning, f.msg, nil)
	default:
		r.event(obj, rev, corev1.EventTypeWarning, f.msg, nil)
	}
	switch {
	case f.stalled:
		return ctrl.Result{}, nil
	case f.after > 0:
		return ctrl.Result{RequeueAfter: f.after}, nil
	}
	return ctrl.Result{RequeueAfter: obj.GetRetryInterval()}, nil
}

// phases returns the result, the source revision (once known) and the
// failure that ended the reconcile, if any. The status follows Flux's:
// Reconciling is visible while it runs, lastAttemptedRevision is set when
// the build starts and lastAppliedRevision once the health checks pass.
func (r *KustomizationReconciler) phases(ctx context.Context, obj *kustomizev1.Kustomization) (ctrl.Result, string, *failure) {
	start, gen := time.Now(), obj.Generation
	if f := unsupportedFields(obj); f != nil {
		return ctrl.Result{}, "", f
	}
	art, f := r.source(ctx, obj)
	if f != nil {
		if art != nil {
			return ctrl.Result{}, art.Revision, f
		}
		return ctrl.Result{}, "", f
	}
	rev, origin := art.Revision, art.Metadata[OriginRevisionKey]
	wasReady := apimeta.IsStatusConditionTrue(obj.Status.Conditions, meta.ReadyCondition)
	sameRevision := obj.Status.LastAppliedRevision == rev
	obj.Status.LastAttemptedRevision = rev
	markProgressing(&obj.Status.Conditions, gen, "Reconciliation in progress",
		fmt.Sprintf("Fetching manifests for revision %s with a timeout of %s", rev, obj.GetTimeout()))
	progress(ctx, obj)
	objs, f := r.build(ctx, obj, art)
	if f != nil {
		// Nothing is applied or pruned after a failed build or decryption.
		return ctrl.Result{}, rev, f
	}
	digest := appliedDigest(objs)
	wrote, f := r.deploy(ctx, obj, objs, rev)
	status := kustomizev1.ReconciliationSucceededReason
	if f != nil {
		status = f.reason
	}
	obj.Status.History.Upsert(digest, metav1.Now(), metav1.Duration{Duration: time.Since(start)}, status, historyMetadata(rev, origin))
	if f != nil {
		return ctrl.Result{}, rev, f
	}
	obj.Status.LastAppliedOriginRevision = origin
	obj.Status.LastAppliedRevision = rev
	markReady(&obj.Status.Conditions, gen, kustomizev1.ReconciliationSucceededReason, "Applied revision: "+rev)
	// Flux records this event on every successful reconcile; a no-op one
	// (same revision, nothing written, already Ready) records none here:
	// an Event is an API write per Kustomization and interval.
	if wrote || !sameRevision || !wasReady {
		r.event(obj, rev, corev1.EventTypeNormal,
			fmt.Sprintf("Reconciliation finished in %s, next run in %s", time.Since(start).Round(time.Millisecond), obj.Spec.Interval.Duration),
			map[string]string{kustomizev1.GroupVersion.Group + "/" + events.MetaCommitStatusKey: events.MetaCommitStatusUpdate})
	}
	return ctrl.Result{RequeueAfter: obj.Spec.Interval.Duration}, rev, nil
}
