package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/celhealth"
	"github.com/lacre/lacre/internal/inventory"
)

// The health phase: wait for the applied objects (spec.wait) or
// spec.healthChecks to be Current, as kstatus computes it.

// health checks the Kustomization's health targets, recording the
// Healthy condition when there are any.
func (r *KustomizationReconciler) health(ctx context.Context, kc client.Client, obj *kustomizev1.Kustomization, applied []*unstructured.Unstructured) *failure {
	targets := healthTargets(obj, applied)
	if len(targets) == 0 {
		return nil
	}
	// As Flux: never wait for itself (a Kustomization that applies itself
	// with wait: true would wait for its own reconcile to end), and a Job
	// with ttlSecondsAfterFinished that is gone has finished.
	targets = slices.DeleteFunc(targets, func(t healthTarget) bool {
		return t.gvk.Kind == kustomizev1.KustomizationKind && t.name == obj.Name && t.namespace == obj.Namespace
	})
	// Compiled before the source was read (invalidCEL): no error here.
	exprs, _ := celhealth.NewChecks(obj.Spec.HealthCheckExprs)
	if err := r.checkHealth(ctx, kc, targets, jobsWithTTL(applied), exprs, obj.GetTimeout()); err != nil {
		setCondition(&obj.Status.Conditions, obj.Generation, meta.HealthyCondition, metav1.ConditionFalse, kustomizev1.HealthCheckFailedReason, err.Error())
		return fail(kustomizev1.HealthCheckFailedReason, err.Error())
	}
	setCondition(&obj.Status.Conditions, obj.Generation, meta.HealthyCondition, metav1.ConditionTrue, meta.SucceededReason, "health checks passed")
	return nil
}

type healthTarget struct {
	gvk       schema.GroupVersionKind
	namespace string
	name      string
}

func (h healthTarget) String() string {
	return fmt.Sprintf("%s/%s/%s", h.gvk.Kind, h.namespace, h.name)
}

// healthTargets are the applied objects with spec.wait, else healthChecks.
func healthTargets(obj *kustomizev1.Kustomization, applied []*unstructured.Unstructured) []healthTarget {
	var out []healthTarget
	if obj.Spec.Wait {
		for _, u := range applied {
			// Objects lacre does not manage are not waited for (Flux).
			if inventory.Ignored(u) {
				continue
			}
			out = append(out, healthTarget{u.GroupVersionKind(), u.GetNamespace(), u.GetName()})
		}
		return out
	}
	for _, hc := range obj.Spec.HealthChecks {
		gv, _ := schema.ParseGroupVersion(hc.APIVersion)
		ns := hc.Namespace
		if ns == "" {
			ns = obj.Namespace
		}
		out = append(out, healthTarget{gv.WithKind(hc.Kind), ns, hc.Name})
	}
	return out
}

// jobsWithTTL returns the built Jobs that set spec.ttlSecondsAfterFinished
// (any value): the TTL controller deletes them once finished.
func jobsWithTTL(built []*unstructured.Unstructured) map[inventory.Object]bool {
	out := map[inventory.Object]bool{}
	for _, u := range built {
		if u.GetKind() != "Job" || !strings.HasPrefix(u.GetAPIVersion(), "batch/") {
			continue
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "ttlSecondsAfterFinished"); found {
			out[inventory.Of(u)] = true
		}
	}
	return out
}

// checkHealth polls the targets with kstatus until all are Current, one
// Failed, or the timeout passes. A target in finished that is not found
// counts as Current.
func (r *KustomizationReconciler) checkHealth(ctx context.Context, kc client.Client, targets []healthTarget, finished map[inventory.Object]bool, exprs *celhealth.Checks, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var pending []string
		for _, t := range targets {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(t.gvk)
			if err := kc.Get(ctx, types.NamespacedName{Namespace: t.namespace, Name: t.name}, u); err != nil {
				if apierrors.IsNotFound(err) && finished[inventory.Object{Namespace: t.namespace, Name: t.name, Group: t.gvk.Group, Kind: t.gvk.Kind}] {
					continue
				}
				pending = append(pending, t.String()+" not found")
				continue
			}
			res, err := computeStatus(ctx, exprs, u)
			if err != nil {
				pending = append(pending, t.String()+": "+err.Error())
				continue
			}
			switch res.Status {
			case status.CurrentStatus:
			case status.FailedStatus:
				return fmt.Errorf("%s failed: %s", t, res.Message)
			default:
				pending = append(pending, fmt.Sprintf("%s is %s: %s", t, res.Status, res.Message))
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("health check timed out after %s: %s", timeout, strings.Join(pending, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
