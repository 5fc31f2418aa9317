package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/celhealth"
)

// The CEL expressions of a Kustomization: spec.healthCheckExprs and
// spec.dependsOn[].readyExpr (internal/celhealth owns their rules).

// terminalConfigMessage prefixes Flux's messages for configuration
// errors that wait for a spec change.
const terminalConfigMessage = "Reconciliation failed terminally due to configuration error"

// invalidCEL compiles every expression of obj; one that does not compile
// stalls obj (InvalidCELExpression) with the field named.
func invalidCEL(obj *kustomizev1.Kustomization) *failure {
	stall := func(err error) *failure {
		return &failure{reason: meta.InvalidCELExpressionReason, stalled: true,
			msg: fmt.Sprintf("%s: %s", terminalConfigMessage, err)}
	}
	if _, err := celhealth.NewChecks(obj.Spec.HealthCheckExprs); err != nil {
		return stall(err)
	}
	for i, dep := range obj.Spec.DependsOn {
		if dep.ReadyExpr == "" {
			continue
		}
		if _, err := celhealth.ReadyExpr(dep.ReadyExpr); err != nil {
			return stall(fmt.Errorf("spec.dependsOn[%d].readyExpr: %w", i, err))
		}
	}
	return nil
}

// readyExprNotReady evaluates a dependency's readyExpr with self (obj)
// and dep; it returns why the dependency is not ready, "" when it is.
// An evaluation error (a missing field, the cost limit) is retried.
func readyExprNotReady(ctx context.Context, obj, dep *kustomizev1.Kustomization, expr string, key types.NamespacedName) string {
	e, err := celhealth.ReadyExpr(expr)
	if err != nil {
		return fmt.Sprintf("dependency '%s': %s", key, err)
	}
	self, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Sprintf("failed to convert Kustomization to unstructured: %s", err)
	}
	depMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dep)
	if err != nil {
		return fmt.Sprintf("failed to convert dependency '%s' to unstructured: %s", key, err)
	}
	ok, err := e.Ready(ctx, self, depMap)
	if err != nil {
		return fmt.Sprintf("dependency '%s': %s", key, err)
	}
	if !ok {
		return fmt.Sprintf("dependency '%s' is not ready according to readyExpr eval", key)
	}
	return ""
}

// computeStatus is u's kstatus status, by spec.healthCheckExprs when one
// covers u's kind.
func computeStatus(ctx context.Context, exprs *celhealth.Checks, u *unstructured.Unstructured) (*status.Result, error) {
	if exprs.Supports(u.GroupVersionKind().GroupKind()) {
		return exprs.Compute(ctx, u)
	}
	return status.Compute(u)
}
