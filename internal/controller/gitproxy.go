package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/internal/source"
)

// withProxy adds spec.proxySecretRef's proxy to auth. A missing or invalid
// Secret is, as in Flux, FetchFailed=True and Ready=False with reason
// AuthenticationFailed, retried (ok false).
func (r *GitRepositoryReconciler) withProxy(ctx context.Context, obj *sourcev1.GitRepository, auth *source.Auth) (*source.Auth, bool) {
	ref := obj.Spec.ProxySecretRef
	if ref == nil {
		return auth, true
	}
	conds, gen := &obj.Status.Conditions, obj.Generation
	sec := &corev1.Secret{}
	err := r.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, sec)
	var p = auth
	if err == nil {
		var po = source.Auth{}
		if auth != nil {
			po = *auth
		}
		po.Proxy, err = source.ProxyFromSecret(sec.Data)
		p = &po
	}
	if err != nil {
		msg := fmt.Sprintf("failed to configure proxy options: secret '%s/%s': %v", obj.Namespace, ref.Name, redact.Reason(err))
		setCondition(conds, gen, sourcev1.FetchFailedCondition, metav1.ConditionTrue, sourcev1.AuthenticationFailedReason, msg)
		markFailed(conds, gen, sourcev1.AuthenticationFailedReason, msg, false)
		emit(r.Recorder, obj, nil, corev1.EventTypeWarning, sourcev1.AuthenticationFailedReason, msg)
		return nil, false
	}
	return p, true
}
