package controller

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/redact"
)

// The source phase: the Kustomization's source (any kind in sourceKinds)
// and its artifact,
// its dependencies, and the watch that reconciles a source's
// Kustomizations when its artifact changes.

// source returns the artifact to build, once the source kind is
// supported, the references are allowed, the artifact exists and every
// dependency is Ready.
func (r *KustomizationReconciler) source(ctx context.Context, obj *kustomizev1.Kustomization) (*meta.Artifact, *failure) {
	if f := invalidCEL(obj); f != nil {
		return nil, f
	}
	if msg := r.crossNamespaceRef(obj); msg != "" {
		// Terminal until the spec changes: no retry.
		return nil, &failure{reason: meta.AccessDeniedReason, msg: msg, stalled: true}
	}
	src, f := r.getSource(ctx, obj)
	if f != nil {
		return nil, f
	}
	art := sourceArtifact(src)
	if art == nil {
		return nil, &failure{reason: kustomizev1.ArtifactFailedReason, after: r.requeueDependency(), quiet: true,
			msg: fmt.Sprintf("Source artifact not found, retrying in %s", r.requeueDependency())}
	}
	if msg := r.dependenciesNotReady(ctx, obj, art); msg != "" {
		return art, &failure{reason: meta.DependencyNotReadyReason, after: r.requeueDependency(), msg: msg,
			notice: fmt.Sprintf("Dependencies do not meet ready condition, retrying in %s", r.requeueDependency())}
	}
	return art, nil
}

// dependenciesNotReady returns why the first of obj's dependencies is not
// ready, "" when all are: as in Flux, each must exist, have observed its
// generation and be Ready and, when it uses the same source (kind, name,
// namespace), have applied art's revision, so the order holds within one
// commit.
func (r *KustomizationReconciler) dependenciesNotReady(ctx context.Context, obj *kustomizev1.Kustomization, art *meta.Artifact) string {
	for _, dep := range obj.Spec.DependsOn {
		key := types.NamespacedName{Namespace: dep.Namespace, Name: dep.Name}
		if key.Namespace == "" {
			key.Namespace = obj.Namespace
		}
		d := &kustomizev1.Kustomization{}
		if err := r.APIReader.Get(ctx, key, d); err != nil {
			return fmt.Sprintf("dependency '%s' not found: %s", key, redact.Reason(err))
		}
		if dep.ReadyExpr != "" {
			if msg := readyExprNotReady(ctx, obj, d, dep.ReadyExpr, key); msg != "" {
				return msg
			}
			if !r.AdditiveCELDependencyCheck {
				continue
			}
		}
		if len(d.Status.Conditions) == 0 || d.Status.ObservedGeneration != d.Generation ||
			!apimeta.IsStatusConditionTrue(d.Status.Conditions, meta.ReadyCondition) {
			return fmt.Sprintf("dependency '%s' is not ready", key)
		}
		if sameSource(obj, d) && d.Status.LastAppliedRevision != art.Revision {
			return fmt.Sprintf("dependency '%s' revision is not up to date", key)
		}
	}
	return ""
}

// sameSource says whether a and b use the same source object.
func sameSource(a, b *kustomizev1.Kustomization) bool {
	ns := func(k *kustomizev1.Kustomization) string {
		if k.Spec.SourceRef.Namespace != "" {
			return k.Spec.SourceRef.Namespace
		}
		return k.Namespace
	}
	return a.Spec.SourceRef.Kind == b.Spec.SourceRef.Kind && a.Spec.SourceRef.Name == b.Spec.SourceRef.Name && ns(a) == ns(b)
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

type artifactChanged struct{ predicate.Funcs }

func (artifactChanged) Update(e event.UpdateEvent) bool {
	o, n := sourceArtifact(e.ObjectOld), sourceArtifact(e.ObjectNew)
	if n == nil {
		return false
	}
	return o == nil || o.Revision != n.Revision || o.Digest != n.Digest
}

func (r *KustomizationReconciler) forSource(ctx context.Context, o client.Object) []reconcile.Request {
	var list kustomizev1.KustomizationList
	if err := r.List(ctx, &list, client.MatchingFields{sourceIndexKey: r.sourceKindOf(o) + "/" + o.GetNamespace() + "/" + o.GetName()}); err != nil {
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
	o, n := sourceArtifact(oldObj), sourceArtifact(newObj)
	if o == nil || n == nil || r.Fetcher == nil {
		return nil
	}
	before, ok := r.Fetcher.Cached(o.Digest)
	if !ok {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	after, err := r.Fetcher.Fetch(fctx, n.URL, n.Digest)
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
