package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/build"
	"github.com/lacre/lacre/internal/redact"
)

// The build phase: fetch the artifact, build spec.path with kustomize
// (decrypting as the decrypt phase configures) and run the postBuild
// substitutions.

// BuildOptions are the controller's flags that change builds.
type BuildOptions struct {
	// LaxSubstitutions turns Flux's StrictPostBuildSubstitutions feature
	// gate off (--feature-gates=StrictPostBuildSubstitutions=false): a
	// variable with no value and no default becomes "" instead of an error.
	LaxSubstitutions bool
	// AllowRemoteBases lets kustomize fetch remote bases and resources
	// (--allow-remote-bases, or Flux's --no-remote-bases=false).
	AllowRemoteBases bool
}

// build returns the objects to apply.
func (r *KustomizationReconciler) build(ctx context.Context, obj *kustomizev1.Kustomization, art *meta.Artifact) ([]*unstructured.Unstructured, *failure) {
	files, dirs, err := r.Fetcher.FetchTree(ctx, art.URL, art.Digest)
	if err != nil {
		return nil, fail(kustomizev1.ArtifactFailedReason, "failed to fetch the artifact: "+err.Error())
	}
	opts := build.Options{Path: obj.Spec.Path, Spec: obj.Spec, RequireEncryptedSecrets: r.RequireEncryptedSecrets, Dirs: dirs, AllowRemote: r.Build.AllowRemoteBases}
	if f := r.decryption(ctx, obj, &opts); f != nil {
		return nil, f
	}
	res, err := build.Build(ctx, files, opts)
	if opts.Decrypt {
		countDecryption(err)
	}
	if err != nil {
		reason := kustomizev1.BuildFailedReason
		switch {
		case decryptionFailed(err):
			reason = kustomizev1.DecryptionFailedReason
		case errors.Is(err, build.ErrPathNotFound):
			reason = kustomizev1.ArtifactFailedReason // as Flux: nothing is applied or pruned
		}
		return nil, fail(reason, err.Error())
	}
	if obj.Spec.PostBuild != nil {
		vars, err := SubstitutionVars(ctx, r.APIReader, obj)
		if err != nil {
			return nil, fail(kustomizev1.BuildFailedReason, err.Error())
		}
		if err := build.Substitute(res.Objects, vars, SubstituteOptions(obj, !r.Build.LaxSubstitutions)); err != nil {
			return nil, fail(kustomizev1.BuildFailedReason, "post-build substitution failed: "+err.Error())
		}
	}
	return res.Objects, nil
}

// SubstituteOptions returns the substitution options of obj.
func SubstituteOptions(obj *kustomizev1.Kustomization, strict bool) build.SubstituteOptions {
	return build.SubstituteOptions{Strict: strict, Always: obj.Spec.PostBuild != nil && obj.Spec.PostBuild.SubstituteStrategy == kustomizev1.SubstituteStrategyAlways}
}

// SubstitutionVars collects a Kustomization's postBuild variables:
// substituteFrom ConfigMaps and Secrets in its namespace, in order, then
// substitute, which wins. Errors name the object, never a value. The
// CLI's build and diff use it too.
func SubstitutionVars(ctx context.Context, rd client.Reader, obj *kustomizev1.Kustomization) (map[string]string, error) {
	vars := map[string]string{}
	for _, ref := range obj.Spec.PostBuild.SubstituteFrom {
		data, err := substituteFrom(ctx, rd, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, ref)
		if err != nil {
			return nil, err
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

// substituteFrom reads one substituteFrom entry (nil when optional and
// absent).
func substituteFrom(ctx context.Context, rd client.Reader, key types.NamespacedName, ref kustomizev1.SubstituteReference) (map[string]string, error) {
	var obj client.Object
	switch ref.Kind {
	case "ConfigMap":
		obj = &corev1.ConfigMap{}
	case "Secret":
		obj = &corev1.Secret{}
	default:
		return nil, fmt.Errorf("substituteFrom kind %q is not supported", ref.Kind)
	}
	if err := rd.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) && ref.Optional {
			return nil, nil
		}
		return nil, fmt.Errorf("substituteFrom %s '%s': %s", ref.Kind, key, redact.Reason(err))
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		return cm.Data, nil
	}
	data := map[string]string{}
	for k, v := range obj.(*corev1.Secret).Data {
		data[k] = string(v)
	}
	return data, nil
}
