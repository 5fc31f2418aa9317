package controller

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sourcev1 "github.com/lacre/lacre/api/source/v1"
)

// unsupportedField names the first field of obj that lacre cannot honour
// here and why, or returns "" when every field set can be honoured.
func unsupportedField(obj *sourcev1.GitRepository) string {
	switch p := obj.GetProvider(); p {
	case sourcev1.GitProviderGeneric:
	case sourcev1.GitProviderAzure, sourcev1.GitProviderAWS:
		return fmt.Sprintf("spec.provider %q is not supported: lacre-cluster has no %s workload identity; use provider 'generic' with a secretRef", p, p)
	case sourcev1.GitProviderGitHub:
		return fmt.Sprintf("spec.provider %q is not supported: lacre-cluster does not authenticate as a GitHub App; use provider 'generic' with a secretRef holding a token", p)
	default:
		return fmt.Sprintf("spec.provider %q is not supported", p)
	}
	if obj.Spec.ServiceAccountName != "" {
		return "spec.serviceAccountName is not supported: it needs a cloud provider, which lacre-cluster does not have"
	}
	return ""
}

// refuseUnsupported sets Ready=False, Stalled=True naming the field when
// obj sets one lacre cannot honour, and reports whether it did.
func (r *GitRepositoryReconciler) refuseUnsupported(obj *sourcev1.GitRepository) bool {
	msg := unsupportedField(obj)
	if msg == "" {
		return false
	}
	conds, gen := &obj.Status.Conditions, obj.Generation
	setCondition(conds, gen, sourcev1.FetchFailedCondition, metav1.ConditionTrue, UnsupportedFieldReason, msg)
	markFailed(conds, gen, UnsupportedFieldReason, msg, true)
	emit(r.Recorder, obj, nil, corev1.EventTypeWarning, UnsupportedFieldReason, msg)
	return true
}
