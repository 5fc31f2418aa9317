// Package controller holds lacre's reconcilers: GitRepository (fetch Git,
// package an artifact) and, later, Kustomization.
package controller

import (
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lacre/lacre/api/meta"
)

// maxMessage bounds condition messages (Flux trims at 20,000 characters).
const maxMessage = 20000

func trim(msg string) string {
	if len(msg) > maxMessage {
		return msg[:maxMessage-3] + "..."
	}
	return msg
}

func setCondition(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: trim(msg), ObservedGeneration: gen})
}

func markReady(conds *[]metav1.Condition, gen int64, reason, msg string) {
	setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionTrue, reason, msg)
	apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
	apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
}

func markFailed(conds *[]metav1.Condition, gen int64, reason, msg string, stalled bool) {
	setCondition(conds, gen, meta.ReadyCondition, metav1.ConditionFalse, reason, msg)
	apimeta.RemoveStatusCondition(conds, meta.ReconcilingCondition)
	if stalled {
		setCondition(conds, gen, meta.StalledCondition, metav1.ConditionTrue, reason, msg)
	} else {
		apimeta.RemoveStatusCondition(conds, meta.StalledCondition)
	}
}
