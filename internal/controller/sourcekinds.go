package controller

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/source"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
)

// The kinds a Kustomization's sourceRef may name, as Flux's
// kustomize-controller: every one is read the same way, through its
// status.artifact, so a kind works as soon as its CRD is served (typed
// when lacre has the Go type, unstructured otherwise).
const (
	ociRepositoryKind    = "OCIRepository"
	bucketKind           = "Bucket"
	externalArtifactKind = "ExternalArtifact"
)

// sourceKinds maps a sourceRef kind to its group, version and kind.
var sourceKinds = map[string]schema.GroupVersionKind{
	sourcev1.GitRepositoryKind: sourcev1.GroupVersion.WithKind(sourcev1.GitRepositoryKind),
	ociRepositoryKind:          sourcev1.GroupVersion.WithKind(ociRepositoryKind),
	bucketKind:                 sourcev1.GroupVersion.WithKind(bucketKind),
	externalArtifactKind:       sourcev1.GroupVersion.WithKind(externalArtifactKind),
}

// featureExternalArtifact is Flux's feature gate allowing sourceRef kind
// ExternalArtifact (off by default, as in Flux).
const featureExternalArtifact = "ExternalArtifact"

// newSourceObject returns an empty object of kind: the typed one when the
// scheme has it, else an unstructured one.
func newSourceObject(scheme *runtime.Scheme, gvk schema.GroupVersionKind) client.Object {
	if o, err := scheme.New(gvk); err == nil {
		if co, ok := o.(client.Object); ok {
			return co
		}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

// sourceArtifact returns a source object's status.artifact (nil when it has
// none or it does not parse).
func sourceArtifact(o client.Object) *meta.Artifact {
	if s, ok := o.(interface{ GetArtifact() *meta.Artifact }); ok {
		return s.GetArtifact()
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	m, found, err := unstructured.NestedMap(u.Object, "status", "artifact")
	if err != nil || !found {
		return nil
	}
	art := &meta.Artifact{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, art); err != nil {
		return nil
	}
	return art
}

// sourceWatches starts, once per kind, the watch that reconciles a
// source's Kustomizations when its artifact changes. GitRepository's is
// registered with the controller; the other kinds' are added when a
// Kustomization first names them and their CRD is served, so a cluster
// without a kind's CRD still starts.
type sourceWatches struct {
	mu      sync.Mutex
	ctrl    controller.Controller
	cache   cache.Cache
	started map[string]bool
}

// ensure starts the watch of kind with obj's type, if not started yet.
func (w *sourceWatches) ensure(r *KustomizationReconciler, kind string, obj client.Object) error {
	if w == nil || w.ctrl == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started[kind] {
		return nil
	}
	empty := obj.DeepCopyObject().(client.Object)
	if err := w.ctrl.Watch(source.Kind(w.cache, empty, r.sourceHandler(), artifactChanged{})); err != nil {
		return err
	}
	if w.started == nil {
		w.started = map[string]bool{}
	}
	w.started[kind] = true
	return nil
}

// getSource reads the object obj.Spec.SourceRef names: its artifact, or a
// failure (unknown kind, gate off, not served or not found).
func (r *KustomizationReconciler) getSource(ctx context.Context, obj *kustomizev1.Kustomization) (client.Object, *failure) {
	ref := obj.Spec.SourceRef
	gvk, ok := sourceKinds[ref.Kind]
	if !ok {
		return nil, &failure{reason: kustomizev1.ArtifactFailedReason, msg: fmt.Sprintf("source `%s` kind %q not supported", ref.Name, ref.Kind), stalled: true}
	}
	srcNS := ref.Namespace
	if srcNS == "" {
		srcNS = obj.Namespace
	}
	if ref.Kind == externalArtifactKind && !r.AllowExternalArtifact {
		return nil, &failure{reason: meta.AccessDeniedReason, stalled: true,
			msg: fmt.Sprintf("can't access '%s/%s/%s', %s feature gate is disabled", ref.Kind, srcNS, ref.Name, featureExternalArtifact)}
	}
	src := newSourceObject(r.Scheme(), gvk)
	err := r.Get(ctx, types.NamespacedName{Namespace: srcNS, Name: ref.Name}, src)
	if err == nil || apierrors.IsNotFound(err) {
		// The kind is served: its Kustomizations follow its artifacts.
		if werr := r.watches.ensure(r, ref.Kind, src); werr != nil {
			return nil, fail(kustomizev1.ArtifactFailedReason, fmt.Sprintf("cannot watch %s objects: %s", ref.Kind, werr))
		}
	}
	if err != nil {
		msg := fmt.Sprintf("Source '%s/%s/%s' not found", ref.Kind, srcNS, ref.Name)
		if apimeta.IsNoMatchError(err) {
			msg += fmt.Sprintf(" (the %s CRD is not installed)", gvk.GroupKind())
		}
		return nil, &failure{reason: kustomizev1.ArtifactFailedReason, quiet: true, msg: msg}
	}
	return src, nil
}

// sourceKindOf is the kind of a source object, typed or unstructured.
func (r *KustomizationReconciler) sourceKindOf(o client.Object) string {
	if k := o.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	if gvks, _, err := r.Scheme().ObjectKinds(o); err == nil && len(gvks) > 0 {
		return gvks[0].Kind
	}
	return ""
}

// sourceIndexValue is the sourceIndexKey value of a Kustomization: the
// kind, namespace and name of its source.
func sourceIndexValue(k *kustomizev1.Kustomization) string {
	ns := k.Spec.SourceRef.Namespace
	if ns == "" {
		ns = k.Namespace
	}
	return k.Spec.SourceRef.Kind + "/" + ns + "/" + k.Spec.SourceRef.Name
}
