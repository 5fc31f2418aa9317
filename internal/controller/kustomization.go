package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/build"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/keys/awskms"
	"github.com/lacre/lacre/keys/azkv"
	"github.com/lacre/lacre/keys/gcpkms"
	"github.com/lacre/lacre/keys/pgp"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/sops"
)

// Labels set on every applied object.
const (
	NameLabel      = "kustomize.toolkit.fluxcd.io/name"
	NamespaceLabel = "kustomize.toolkit.fluxcd.io/namespace"
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
	// NoCrossNamespaceRefs refuses a Kustomization whose sourceRef or
	// dependsOn names another namespace (Ready=False, Stalled,
	// AccessDenied). postBuild.substituteFrom and the decryption Secret have
	// no namespace field: they are always read in the Kustomization's own
	// namespace.
	NoCrossNamespaceRefs bool
	// DefaultServiceAccount, when set, is impersonated (in the
	// Kustomization's namespace) for Kustomizations without
	// spec.serviceAccountName, so no tenant applies with the controller's
	// own rights.
	DefaultServiceAccount string
	// Config and Direct reach the API server without the cache, for the
	// applied objects (any kind: no informer per kind); Config is also the
	// base of impersonating clients for spec.serviceAccountName.
	Config *rest.Config
	Direct client.Client
	// unwraps counts cache misses (for tests and the benchmark).
	unwraps atomic.Int64
}

// Unwraps returns the number of real key unwraps so far.
func (r *KustomizationReconciler) Unwraps() int64 { return r.unwraps.Load() }

// SetupWithManager registers the reconciler and its source watch.
func (r *KustomizationReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, concurrency int) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &kustomizev1.Kustomization{}, sourceIndexKey, func(o client.Object) []string {
		k := o.(*kustomizev1.Kustomization)
		ns := k.Spec.SourceRef.Namespace
		if ns == "" {
			ns = k.Namespace
		}
		return []string{ns + "/" + k.Spec.SourceRef.Name}
	}); err != nil {
		return err
	}
	if concurrency < 1 {
		concurrency = 4
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&kustomizev1.Kustomization{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, requestedAtChanged{}))).
		Watches(&sourcev1.GitRepository{}, r.sourceHandler(), builder.WithPredicates(artifactChanged{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
}

type artifactChanged struct{ predicate.Funcs }

func (artifactChanged) Update(e eventUpdate) bool {
	o, n := e.ObjectOld.(*sourcev1.GitRepository), e.ObjectNew.(*sourcev1.GitRepository)
	if n.Status.Artifact == nil {
		return false
	}
	return o.Status.Artifact == nil || o.Status.Artifact.Revision != n.Status.Artifact.Revision || o.Status.Artifact.Digest != n.Status.Artifact.Digest
}

func (r *KustomizationReconciler) forSource(ctx context.Context, o client.Object) []reconcile.Request {
	var list kustomizev1.KustomizationList
	if err := r.List(ctx, &list, client.MatchingFields{sourceIndexKey: o.GetNamespace() + "/" + o.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, k := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: k.Namespace, Name: k.Name}})
	}
	return out
}

type requestQueue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// sourceHandler enqueues a source's Kustomizations. On a new artifact, the
// Kustomizations whose path holds a changed file come first: all of them
// are reconciled (a path may use files elsewhere), but a commit that
// changes one directory of a repository shared by many Kustomizations
// reaches the cluster without waiting behind the others' no-op reconciles.
func (r *KustomizationReconciler) sourceHandler() handler.EventHandler {
	add := func(q requestQueue, reqs []reconcile.Request) {
		for _, req := range reqs {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q requestQueue) { add(q, r.forSource(ctx, e.Object)) },
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q requestQueue) { add(q, r.forSource(ctx, e.Object)) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q requestQueue) {
			add(q, r.forSource(ctx, e.Object))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q requestQueue) {
			reqs := r.forSource(ctx, e.ObjectNew)
			changed := r.changedFiles(ctx, e.ObjectOld, e.ObjectNew)
			if len(changed) == 0 || len(reqs) < 2 {
				add(q, reqs)
				return
			}
			first, rest := r.changedFirst(ctx, reqs, changed)
			// Items already waiting in controller-runtime's priority queue
			// (every Kustomization, for its interval) keep their place when
			// added again: order alone does not move them, a priority does.
			if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok && len(first) > 0 {
				high := 1
				pq.AddWithOpts(priorityqueue.AddOpts{Priority: &high}, first...)
			} else {
				add(q, first)
			}
			add(q, rest)
		},
	}
}

// changedFiles lists the files that differ between the old and the new
// artifact, when the old one is still in the fetcher's cache (nil
// otherwise). The new one is fetched here; the reconciles reuse it.
func (r *KustomizationReconciler) changedFiles(ctx context.Context, oldObj, newObj client.Object) []string {
	o, n := oldObj.(*sourcev1.GitRepository), newObj.(*sourcev1.GitRepository)
	if o.Status.Artifact == nil || n.Status.Artifact == nil || r.Fetcher == nil {
		return nil
	}
	before, ok := r.Fetcher.Cached(o.Status.Artifact.Digest)
	if !ok {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	after, err := r.Fetcher.Fetch(fctx, n.Status.Artifact.URL, n.Status.Artifact.Digest)
	if err != nil {
		return nil
	}
	var changed []string
	for name, data := range after {
		if old, ok := before[name]; !ok || !bytes.Equal(old, data) {
			changed = append(changed, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			changed = append(changed, name)
		}
	}
	return changed
}

// changedFirst splits the requests: the Kustomizations whose spec.path
// holds a changed file, and the others.
func (r *KustomizationReconciler) changedFirst(ctx context.Context, reqs []reconcile.Request, changed []string) (first, rest []reconcile.Request) {
	first = make([]reconcile.Request, 0, len(reqs))
	rest = make([]reconcile.Request, 0, len(reqs))
	for _, req := range reqs {
		k := &kustomizev1.Kustomization{}
		hit := false
		if err := r.Get(ctx, req.NamespacedName, k); err == nil {
			dir := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(k.Spec.Path, "./")), "/")
			for _, c := range changed {
				if dir == "" || strings.HasPrefix(c, dir+"/") {
					hit = true
					break
				}
			}
		}
		if hit {
			first = append(first, req)
		} else {
			rest = append(rest, req)
		}
	}
	return first, rest
}

// targetClient is the client for applied objects: impersonating
// spec.serviceAccountName when set, else the --default-service-account, so
// RBAC limits what a tenant applies; the controller's own identity only
// when neither is set.
func (r *KustomizationReconciler) targetClient(obj *kustomizev1.Kustomization) (client.Client, error) {
	sa := obj.Spec.ServiceAccountName
	if sa == "" {
		sa = r.DefaultServiceAccount
	}
	if sa == "" {
		return r.Direct, nil
	}
	cfg := rest.CopyConfig(r.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", obj.Namespace, sa)}
	return client.New(cfg, client.Options{Scheme: r.Direct.Scheme(), Mapper: r.Direct.RESTMapper()})
}

func (r *KustomizationReconciler) event(obj *kustomizev1.Kustomization, typ, reason, msg string) {
	if r.Recorder != nil {
		r.Recorder.Event(obj, typ, reason, msg)
	}
}

// Reconcile implements reconcile.Reconciler.
func (r *KustomizationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &kustomizev1.Kustomization{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			forgetObject(kustomizev1.KustomizationKind, req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	defer observeDuration(kustomizev1.KustomizationKind, time.Now())
	if !obj.DeletionTimestamp.IsZero() {
		if obj.Spec.Prune && !obj.Spec.Suspend && obj.Status.Inventory != nil {
			kc, err := r.targetClient(obj)
			if err != nil {
				return ctrl.Result{}, err
			}
			if _, err := r.prune(ctx, kc, obj, obj.Status.Inventory.Entries, nil); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "pruning on deletion failed; objects are left in place")
			}
		}
		if controllerutil.RemoveFinalizer(obj, kustomizev1.KustomizationFinalizer) {
			return ctrl.Result{}, r.Update(ctx, obj)
		}
		return ctrl.Result{}, nil
	}
	if controllerutil.AddFinalizer(obj, kustomizev1.KustomizationFinalizer) {
		if err := r.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	if obj.Spec.Suspend {
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(obj.DeepCopy())
	if v, ok := obj.Annotations[meta.ReconcileRequestAnnotation]; ok {
		obj.Status.LastHandledReconcileAt = v
	}
	res, recErr := r.reconcile(ctx, obj)
	obj.Status.ObservedGeneration = obj.Generation
	recordCondition(kustomizev1.KustomizationKind, obj.Namespace, obj.Name, obj.Status.Conditions)
	if err := r.Status().Patch(ctx, obj, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, errors.Join(recErr, err)
	}
	return res, recErr
}

func (r *KustomizationReconciler) fail(obj *kustomizev1.Kustomization, reason, msg string, stalled bool) {
	markFailed(&obj.Status.Conditions, obj.Generation, reason, msg, stalled)
	r.event(obj, corev1.EventTypeWarning, reason, msg)
}

func (r *KustomizationReconciler) reconcile(ctx context.Context, obj *kustomizev1.Kustomization) (ctrl.Result, error) {
	retry := ctrl.Result{RequeueAfter: obj.GetRetryInterval()}
	gen := obj.Generation
	ref := obj.Spec.SourceRef
	if ref.Kind != sourcev1.GitRepositoryKind {
		r.fail(obj, kustomizev1.ArtifactFailedReason, fmt.Sprintf("source kind %q is not supported", ref.Kind), true)
		return ctrl.Result{}, nil
	}
	if msg := r.crossNamespaceRef(obj); msg != "" {
		// Terminal until the spec changes: no retry.
		r.fail(obj, meta.AccessDeniedReason, msg, true)
		return ctrl.Result{}, nil
	}
	srcNS := ref.Namespace
	if srcNS == "" {
		srcNS = obj.Namespace
	}
	src := &sourcev1.GitRepository{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: srcNS, Name: ref.Name}, src); err != nil {
		r.fail(obj, kustomizev1.ArtifactFailedReason, fmt.Sprintf("Source '%s/%s/%s' not found", ref.Kind, srcNS, ref.Name), false)
		return retry, nil
	}
	art := src.Status.Artifact
	if art == nil {
		r.fail(obj, kustomizev1.ArtifactFailedReason, fmt.Sprintf("Source '%s/%s/%s' is not ready, artifact not found", ref.Kind, srcNS, ref.Name), false)
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	for _, dep := range obj.Spec.DependsOn {
		ns := dep.Namespace
		if ns == "" {
			ns = obj.Namespace
		}
		d := &kustomizev1.Kustomization{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: dep.Name}, d); err != nil ||
			d.Status.ObservedGeneration != d.Generation || !apimeta.IsStatusConditionTrue(d.Status.Conditions, meta.ReadyCondition) {
			r.fail(obj, meta.DependencyNotReadyReason, fmt.Sprintf("dependency '%s/%s' is not ready", ns, dep.Name), false)
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
	}
	obj.Status.LastAttemptedRevision = art.Revision
	setCondition(&obj.Status.Conditions, gen, meta.ReconcilingCondition, metav1.ConditionTrue, meta.ProgressingReason, "reconciling revision "+art.Revision)

	files, dirs, err := r.Fetcher.FetchTree(ctx, art.URL, art.Digest)
	if err != nil {
		r.fail(obj, kustomizev1.ArtifactFailedReason, "failed to fetch the artifact: "+err.Error(), false)
		return retry, nil
	}
	opts := build.Options{Path: obj.Spec.Path, Spec: obj.Spec, RequireEncryptedSecrets: r.RequireEncryptedSecrets, Dirs: dirs}
	if dec := obj.Spec.Decryption; dec != nil {
		ids, err := r.identities(ctx, obj)
		if err != nil {
			Decryptions.WithLabelValues("secret_error").Inc()
			r.fail(obj, kustomizev1.DecryptionFailedReason, err.Error(), false)
			return retry, nil
		}
		opts.Decrypt, opts.Identities = true, ids
	}
	res, err := build.Build(ctx, files, opts)
	if opts.Decrypt {
		if o := decryptionOutcome(err); o != "" {
			Decryptions.WithLabelValues(o).Inc()
		}
	}
	if err != nil {
		reason := kustomizev1.BuildFailedReason
		if errors.Is(err, keys.ErrNoKey) || errors.Is(err, sops.ErrMACMismatch) || errors.Is(err, sops.ErrMACDecrypt) ||
			errors.Is(err, sops.ErrDecryptValue) || errors.Is(err, build.ErrEncryptedNotDecrypted) || errors.Is(err, build.ErrPlaintextSecret) {
			reason = kustomizev1.DecryptionFailedReason
		}
		// Nothing is applied or pruned after a failed build or decryption.
		r.fail(obj, reason, err.Error(), false)
		return retry, nil
	}
	if pb := obj.Spec.PostBuild; pb != nil {
		vars, err := r.substitutions(ctx, obj)
		if err != nil {
			r.fail(obj, kustomizev1.BuildFailedReason, err.Error(), false)
			return retry, nil
		}
		if err := build.Substitute(res.Objects, vars); err != nil {
			r.fail(obj, kustomizev1.BuildFailedReason, "post-build substitution failed: "+err.Error(), false)
			return retry, nil
		}
	}
	kc, err := r.targetClient(obj)
	if err != nil {
		r.fail(obj, kustomizev1.ReconciliationFailedReason, err.Error(), false)
		return retry, nil
	}
	entries, changed, err := r.apply(ctx, kc, obj, res.Objects)
	if err != nil {
		r.fail(obj, kustomizev1.ReconciliationFailedReason, err.Error(), false)
		return retry, nil
	}
	var old []kustomizev1.ResourceRef
	if obj.Status.Inventory != nil {
		old = obj.Status.Inventory.Entries
	}
	if entries == nil {
		// The CRD requires the list; an empty build still has one.
		entries = []kustomizev1.ResourceRef{}
	}
	obj.Status.Inventory = &kustomizev1.ResourceInventory{Entries: entries}
	if obj.Spec.Prune {
		pruned, err := r.prune(ctx, kc, obj, old, entries)
		if err != nil {
			r.fail(obj, kustomizev1.PruneFailedReason, err.Error(), false)
			return retry, nil
		}
		changed += pruned
	}
	wasReady := apimeta.IsStatusConditionTrue(obj.Status.Conditions, meta.ReadyCondition)
	sameRevision := obj.Status.LastAppliedRevision == art.Revision
	obj.Status.LastAppliedRevision = art.Revision
	msg := "Applied revision: " + art.Revision
	if targets := healthTargets(obj, res.Objects); len(targets) > 0 {
		if err := r.checkHealth(ctx, kc, targets, obj.GetTimeout()); err != nil {
			setCondition(&obj.Status.Conditions, gen, meta.HealthyCondition, metav1.ConditionFalse, kustomizev1.HealthCheckFailedReason, err.Error())
			r.fail(obj, kustomizev1.HealthCheckFailedReason, err.Error(), false)
			return retry, nil
		}
		setCondition(&obj.Status.Conditions, gen, meta.HealthyCondition, metav1.ConditionTrue, meta.SucceededReason, "health checks passed")
	}
	markReady(&obj.Status.Conditions, gen, meta.SucceededReason, msg)
	// A no-op reconcile (same revision, nothing written, already Ready)
	// records no event: an Event is an API write per Kustomization and
	// interval.
	if changed > 0 || !sameRevision || !wasReady {
		r.event(obj, corev1.EventTypeNormal, meta.SucceededReason, msg)
	}
	return ctrl.Result{RequeueAfter: obj.Spec.Interval.Duration}, nil
}

// crossNamespaceRef returns why obj is refused under NoCrossNamespaceRefs:
// a sourceRef or dependsOn entry in another namespace; "" when allowed.
func (r *KustomizationReconciler) crossNamespaceRef(obj *kustomizev1.Kustomization) string {
	if !r.NoCrossNamespaceRefs {
		return ""
	}
	ref := obj.Spec.SourceRef
	if ref.Namespace != "" && ref.Namespace != obj.Namespace {
		return fmt.Sprintf("cannot access source '%s/%s/%s' from namespace %q: cross-namespace references are disabled (--no-cross-namespace-refs)", ref.Kind, ref.Namespace, ref.Name, obj.Namespace)
	}
	for _, dep := range obj.Spec.DependsOn {
		if dep.Namespace != "" && dep.Namespace != obj.Namespace {
			return fmt.Sprintf("cannot depend on Kustomization '%s/%s' from namespace %q: cross-namespace references are disabled (--no-cross-namespace-refs)", dep.Namespace, dep.Name, obj.Namespace)
		}
	}
	return ""
}

// substitutions collects postBuild variables: substituteFrom in order,
// then substitute, which wins.
func (r *KustomizationReconciler) substitutions(ctx context.Context, obj *kustomizev1.Kustomization) (map[string]string, error) {
	return SubstitutionVars(ctx, r.APIReader, obj)
}

// SubstitutionVars collects a Kustomization's postBuild variables:
// substituteFrom ConfigMaps and Secrets in its namespace, in order, then
// substitute. Errors name the object, never a value. The CLI's build and
// diff use it too.
func SubstitutionVars(ctx context.Context, rd client.Reader, obj *kustomizev1.Kustomization) (map[string]string, error) {
	vars := map[string]string{}
	for _, ref := range obj.Spec.PostBuild.SubstituteFrom {
		key := types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}
		var data map[string]string
		switch ref.Kind {
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			if err := rd.Get(ctx, key, cm); err != nil {
				if apierrors.IsNotFound(err) && ref.Optional {
					continue
				}
				return nil, fmt.Errorf("substituteFrom ConfigMap '%s': %s", key, reasonOf(err))
			}
			data = cm.Data
		case "Secret":
			sec := &corev1.Secret{}
			if err := rd.Get(ctx, key, sec); err != nil {
				if apierrors.IsNotFound(err) && ref.Optional {
					continue
				}
				return nil, fmt.Errorf("substituteFrom Secret '%s': %s", key, reasonOf(err))
			}
			data = map[string]string{}
			for k, v := range sec.Data {
				data[k] = string(v)
			}
		default:
			return nil, fmt.Errorf("substituteFrom kind %q is not supported", ref.Kind)
		}
		for k, v := range data {
			vars[k] = v
		}
	}
	for k, v := range obj.Spec.PostBuild.Substitute {
		vars[k] = v
	}
	return vars, nil
}

// DecryptionOptions configure where the Kustomization controller finds keys
// besides the decryption Secret named by spec.decryption.secretRef.
type DecryptionOptions struct {
	// AmbientCloudCredentials lets every Kustomization use the
	// controller's own cloud identity (EKS IRSA, GKE workload identity,
	// Azure workload or managed identity) for KMS stanzas. Off by default:
	// with it, any tenant can decrypt what the controller's identity can.
	AmbientCloudCredentials bool
	// DefaultAgeSecret, when set, is a Secret (in the controller's
	// namespace) whose *.agekey entries are added for Kustomizations in the
	// namespaces DefaultAgeNamespaces selects, and only those.
	DefaultAgeSecret     types.NamespacedName
	DefaultAgeNamespaces labels.Selector
	// AWS, GCP and Azure are the base options of the cloud KMS clients
	// (endpoints, transports); credentials come from the Secret's
	// sops.aws-kms, sops.gcp-kms and sops.azure-kv entries, or the ambient
	// identity.
	AWS   awskms.Options
	GCP   gcpkms.Options
	Azure azkv.Options
	// VaultAllowlist holds the Vault address prefixes a sops.vault-token
	// may be sent to (nil: any, as Flux). A file names its own
	// vault_address, so without a list a commit can send the token to a
	// server of its choosing.
	VaultAllowlist []string
}

// identities collects the keys a Kustomization may use: the decryption
// Secret (in the Kustomization's own namespace) with Flux's entry names
// (*.agekey, *.asc, sops.vault-token, sops.aws-kms, sops.azure-kv,
// sops.gcp-kms), the default age Secret when its namespace selector
// matches, and the ambient cloud identity when the operator allows it.
func (r *KustomizationReconciler) identities(ctx context.Context, obj *kustomizev1.Kustomization) ([]keys.Identity, error) {
	var ids []keys.Identity
	var scope []string
	ref := obj.Spec.Decryption.SecretRef
	if ref != nil {
		sec := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, sec); err != nil {
			return nil, fmt.Errorf("cannot get decryption Secret '%s/%s': %s", obj.Namespace, ref.Name, reasonOf(err))
		}
		got, err := r.secretIdentities(sec)
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("decryption Secret '%s/%s' holds no *.agekey, *.asc, sops.vault-token, sops.aws-kms, sops.azure-kv or sops.gcp-kms entry", obj.Namespace, ref.Name)
		}
		ids = append(ids, got...)
		scope = append(scope, string(sec.UID)+"/"+sec.ResourceVersion)
	}
	d := r.Decryption
	if d.DefaultAgeSecret.Name != "" && d.DefaultAgeNamespaces != nil {
		ns := &corev1.Namespace{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Name: obj.Namespace}, ns); err != nil {
			return nil, fmt.Errorf("cannot get namespace %q: %s", obj.Namespace, reasonOf(err))
		}
		if d.DefaultAgeNamespaces.Matches(labels.Set(ns.Labels)) {
			sec := &corev1.Secret{}
			if err := r.APIReader.Get(ctx, d.DefaultAgeSecret, sec); err != nil {
				return nil, fmt.Errorf("cannot get the default age Secret '%s': %s", d.DefaultAgeSecret, reasonOf(err))
			}
			for _, n := range sortedKeys(sec.Data) {
				if !strings.HasSuffix(n, ".agekey") {
					continue
				}
				got, err := agekeys.ParseIdentities(bytes.NewReader(sec.Data[n]))
				if err != nil {
					return nil, fmt.Errorf("default age Secret '%s' entry %q: %v", d.DefaultAgeSecret, n, err)
				}
				ids = append(ids, got...)
			}
			scope = append(scope, "default:"+string(sec.UID)+"/"+sec.ResourceVersion)
		}
	}
	if d.AmbientCloudCredentials {
		ids = append(ids, awskms.NewIdentity(d.AWS), gcpkms.NewIdentity(d.GCP), azkv.NewIdentity(d.Azure))
		scope = append(scope, "ambient")
	}
	if len(ids) == 0 {
		if ref == nil {
			return nil, errors.New("decryption.secretRef is required (no default age key applies to this namespace and ambient cloud credentials are not enabled)")
		}
	}
	return r.KeyCache.Wrap(strings.Join(scope, "+"), ids, func(typ string) {
		r.unwraps.Add(1)
		UnwrapCalls.WithLabelValues(typ).Inc()
	}), nil
}

// secretIdentities reads one decryption Secret. Errors name the Secret and
// the entry, never its content.
func (r *KustomizationReconciler) secretIdentities(sec *corev1.Secret) ([]keys.Identity, error) {
	var ids []keys.Identity
	d := r.Decryption
	for _, n := range sortedKeys(sec.Data) {
		v := sec.Data[n]
		bad := func(err error) error {
			return fmt.Errorf("decryption Secret '%s/%s' entry %q: %v", sec.Namespace, sec.Name, n, err)
		}
		switch {
		case strings.HasSuffix(n, ".agekey"):
			got, err := agekeys.ParseIdentities(bytes.NewReader(v))
			if err != nil {
				return nil, bad(err)
			}
			ids = append(ids, got...)
		case strings.HasSuffix(n, ".asc"):
			id, err := pgp.ParseArmoredIdentities(v)
			if err != nil {
				return nil, bad(err)
			}
			ids = append(ids, id)
		case n == "sops.vault-token":
			ids = append(ids, vault.NewIdentity(vault.Options{Token: strings.TrimSpace(string(v)), Allowlist: d.VaultAllowlist}))
		case n == "sops.aws-kms":
			creds, err := awskms.ParseSecretCredentials(v)
			if err != nil {
				return nil, bad(err)
			}
			o := d.AWS
			o.Credentials = creds
			ids = append(ids, awskms.NewIdentity(o))
		case n == "sops.azure-kv":
			cred, err := azkv.ParseSecretCredential(v)
			if err != nil {
				return nil, bad(err)
			}
			o := d.Azure
			o.Credential = cred
			ids = append(ids, azkv.NewIdentity(o))
		case n == "sops.gcp-kms":
			o := d.GCP
			o.CredentialsJSON = bytes.Clone(v)
			o.AccessToken = ""
			ids = append(ids, gcpkms.NewIdentity(o))
		}
	}
	return ids, nil
}

func sortedKeys(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func stage(u *unstructured.Unstructured) int {
	switch u.GetKind() {
	case "CustomResourceDefinition":
		return 0
	case "Namespace":
		return 1
	case "ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Role", "RoleBinding":
		return 2
	case "ConfigMap", "Secret":
		return 3
	}
	return 4
}

func inventoryID(u *unstructured.Unstructured) kustomizev1.ResourceRef {
	gvk := u.GroupVersionKind()
	return kustomizev1.ResourceRef{ID: fmt.Sprintf("%s_%s_%s_%s", u.GetNamespace(), u.GetName(), gvk.Group, gvk.Kind), Version: gvk.Version}
}

// apply server-side applies the objects in stages, writing only objects
// whose dry-run result differs from the live object.
// It also returns how many objects it wrote.
func (r *KustomizationReconciler) apply(ctx context.Context, kc client.Client, obj *kustomizev1.Kustomization, objs []*unstructured.Unstructured) ([]kustomizev1.ResourceRef, int, error) {
	sort.SliceStable(objs, func(i, j int) bool { return stage(objs[i]) < stage(objs[j]) })
	var entries []kustomizev1.ResourceRef
	written := 0
	for _, u := range objs {
		ann := u.GetAnnotations()
		if ann[kustomizev1.ReconcileAnnotation] == kustomizev1.DisabledValue || ann[kustomizev1.SSAAnnotation] == "Ignore" {
			entries = append(entries, inventoryID(u))
			continue
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[NameLabel], labels[NamespaceLabel] = obj.Name, obj.Namespace
		u.SetLabels(labels)
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		err := kc.Get(ctx, client.ObjectKeyFromObject(u), live)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, written, fmt.Errorf("%s/%s: %v", u.GetKind(), u.GetName(), err)
		}
		if exists && ann[kustomizev1.SSAAnnotation] == "IfNotPresent" {
			entries = append(entries, inventoryID(u))
			continue
		}
		if exists {
			dry := u.DeepCopy()
			if err := kc.Patch(ctx, dry, client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll); err == nil && !drifted(live, dry) {
				entries = append(entries, inventoryID(u))
				continue
			}
		}
		if err := kc.Patch(ctx, u.DeepCopy(), client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			force := obj.Spec.Force || strings.EqualFold(ann[kustomizev1.ForceAnnotation], "enabled")
			if force && exists && (apierrors.IsInvalid(err) || strings.Contains(err.Error(), "immutable")) {
				if derr := kc.Delete(ctx, live); derr == nil || apierrors.IsNotFound(derr) {
					err = kc.Patch(ctx, u.DeepCopy(), client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership)
				}
			}
			if err != nil {
				return nil, written, fmt.Errorf("%s/%s/%s apply failed: %v", u.GetKind(), u.GetNamespace(), u.GetName(), scrubAPIError(err))
			}
		}
		written++
		entries = append(entries, inventoryID(u))
	}
	return entries, written, nil
}

// scrubAPIError keeps the reason of an API error without echoing the
// object (which may be a decrypted Secret).
func scrubAPIError(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (%d)", se.Status().Reason, se.Status().Code)
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// drifted compares the dry-run result with the live object, ignoring
// server-managed metadata and status.
func drifted(live, dry *unstructured.Unstructured) bool {
	norm := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy().Object
		delete(c, "status")
		if m, ok := c["metadata"].(map[string]any); ok {
			for _, k := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
				delete(m, k)
			}
		}
		return c
	}
	return !equalJSON(norm(live), norm(dry))
}

// prune deletes objects of old that are not in keep and still carry this
// Kustomization's labels.
func (r *KustomizationReconciler) prune(ctx context.Context, kc client.Client, obj *kustomizev1.Kustomization, old, keep []kustomizev1.ResourceRef) (int, error) {
	kept := map[string]bool{}
	for _, e := range keep {
		kept[e.ID] = true
	}
	n := 0
	for i := len(old) - 1; i >= 0; i-- {
		e := old[i]
		if kept[e.ID] {
			continue
		}
		parts := strings.Split(e.ID, "_")
		if len(parts) != 4 {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: parts[2], Version: e.Version, Kind: parts[3]})
		if err := kc.Get(ctx, types.NamespacedName{Namespace: parts[0], Name: parts[1]}, u); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return n, err
		}
		l := u.GetLabels()
		if l[NameLabel] != obj.Name || l[NamespaceLabel] != obj.Namespace ||
			u.GetAnnotations()[kustomizev1.PruneAnnotation] == kustomizev1.DisabledValue ||
			u.GetAnnotations()[kustomizev1.ReconcileAnnotation] == kustomizev1.DisabledValue ||
			u.GetAnnotations()[kustomizev1.SSAAnnotation] == "Ignore" {
			continue
		}
		if err := kc.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return n, fmt.Errorf("pruning %s: %v", e.ID, scrubAPIError(err))
		}
		n++
	}
	return n, nil
}
