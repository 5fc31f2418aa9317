package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/internal/source"
)

// Reasons of the SourceVerified condition, Flux's.
const (
	verificationErrorReason       = "VerificationError"
	invalidVerificationModeReason = "InvalidVerificationMode"
	invalidGitObjectReason        = "InvalidGitObject"
	invalidTagSignatureReason     = "InvalidTagSignature"
	invalidCommitSignatureReason  = "InvalidCommitSignature"
)

// requiresVerification: spec.verify asks for more than the last observed
// verification (Flux's rule), so an unchanged revision is checked again.
func requiresVerification(obj *sourcev1.GitRepository) bool {
	v := obj.Spec.Verification
	if v == nil {
		return false
	}
	seen := obj.Status.SourceVerificationMode
	if seen == nil {
		return true
	}
	return (v.VerifyHEAD() && *seen == sourcev1.ModeGitTag) || (v.VerifyTag() && *seen == sourcev1.ModeGitHEAD)
}

// verifySignature checks the commit and/or tag signatures spec.verify asks
// for, as Flux does: on failure SourceVerified=False, Ready=False and no
// new artifact (ok false, with the result to return); on success
// SourceVerified=True and status.sourceVerificationMode.
func (r *GitRepositoryReconciler) verifySignature(ctx context.Context, obj *sourcev1.GitRepository, c *source.Commit, interval time.Duration) (ctrl.Result, bool) {
	conds, gen := &obj.Status.Conditions, obj.Generation
	v := obj.Spec.Verification
	if v == nil {
		obj.Status.SourceVerificationMode = nil
		apimeta.RemoveStatusCondition(conds, sourcev1.SourceVerifiedCondition)
		return ctrl.Result{}, true
	}
	fail := func(reason, msg string, stalled bool) (ctrl.Result, bool) {
		setCondition(conds, gen, sourcev1.SourceVerifiedCondition, metav1.ConditionFalse, reason, msg)
		markFailed(conds, gen, reason, msg, stalled)
		emit(r.Recorder, obj, nil, corev1.EventTypeWarning, reason, msg)
		if stalled {
			return ctrl.Result{}, false
		}
		return ctrl.Result{RequeueAfter: r.jitter(min(interval, 30*time.Second))}, false
	}
	sec := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: v.SecretRef.Name}, sec); err != nil {
		return fail(verificationErrorReason, "public keys secret error: "+redact.Reason(err), false)
	}
	keys, err := source.TrustedKeysFromSecret(sec.Data)
	if err != nil {
		return fail(verificationErrorReason, fmt.Sprintf("public keys secret '%s/%s': %v", obj.Namespace, v.SecretRef.Name, err), false)
	}
	var msg strings.Builder
	msg.WriteString("verified signature of")
	if v.VerifyTag() {
		if c.Tag == nil {
			return fail(invalidVerificationModeReason, "cannot verify tag object's signature if a tag reference is not specified (spec.verify.mode "+string(v.GetMode())+")", true)
		}
		key, err := keys.VerifyTag(c.Tag)
		if errors.Is(err, source.ErrUnsigned) {
			return fail(invalidGitObjectReason, fmt.Sprintf("cannot verify signature of tag '%s' since it is not signed", c.Tag.Name), false)
		}
		if err != nil {
			return fail(invalidTagSignatureReason, fmt.Sprintf("signature verification of tag '%s' failed: %v", c.Tag.Name, err), false)
		}
		fmt.Fprintf(&msg, "\n\t- tag '%s' with key '%s'", c.Tag.Name, key)
	}
	if v.VerifyHEAD() {
		key, err := keys.VerifyCommit(c.Object)
		if err != nil {
			return fail(invalidCommitSignatureReason, fmt.Sprintf("signature verification of commit '%s' failed: %v", c.Hash, err), false)
		}
		fmt.Fprintf(&msg, "\n\t- commit '%s' with key '%s'", c.Hash, key)
	}
	mode := v.GetMode()
	obj.Status.SourceVerificationMode = &mode
	setCondition(conds, gen, sourcev1.SourceVerifiedCondition, metav1.ConditionTrue, "Succeeded", msg.String())
	return ctrl.Result{}, true
}
