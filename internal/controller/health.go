package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

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
			if a := u.GetAnnotations(); a[kustomizev1.ReconcileAnnotation] == kustomizev1.DisabledValue || a[kustomizev1.SSAAnnotation] == "Ignore" {
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

// checkHealth polls the targets with kstatus until all are Current, one
// Failed, or the timeout passes.
func (r *KustomizationReconciler) checkHealth(ctx context.Context, kc client.Client, targets []healthTarget, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var pending []string
		for _, t := range targets {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(t.gvk)
			if err := kc.Get(ctx, types.NamespacedName{Namespace: t.namespace, Name: t.name}, u); err != nil {
				pending = append(pending, t.String()+" not found")
				continue
			}
			res, err := status.Compute(u)
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
