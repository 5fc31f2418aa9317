package celhealth

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

func widget(gen, observed int64, phase string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "generation": gen},
		"status":   map[string]any{"observedGeneration": observed, "phase": phase},
	}}
	return u
}

func TestComputePrecedence(t *testing.T) {
	c, err := NewChecks([]kustomizev1.CustomHealthCheck{{APIVersion: "example.com/v1", Kind: "Widget",
		HealthCheckExpressions: kustomizev1.HealthCheckExpressions{
			Current:    "status.phase == 'Ready' || status.phase == 'Both'",
			InProgress: "status.phase == 'Pending' || status.phase == 'Both'",
			Failed:     "status.phase == 'Failed'",
		}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		u    *unstructured.Unstructured
		want status.Status
	}{
		{widget(1, 1, "Ready"), status.CurrentStatus},
		{widget(1, 1, "Pending"), status.InProgressStatus},
		{widget(1, 1, "Failed"), status.FailedStatus},
		{widget(1, 1, "Both"), status.InProgressStatus}, // inProgress wins over current
		{widget(1, 1, "Other"), status.InProgressStatus},
		{widget(2, 1, "Ready"), status.InProgressStatus}, // generation not observed
	} {
		res, err := c.Compute(ctx, tc.u)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != tc.want {
			t.Errorf("phase %v gen %v: got %s, want %s", tc.u.Object["status"], tc.u.GetGeneration(), res.Status, tc.want)
		}
	}
	// A missing field is an evaluation error (the object stays pending).
	u := widget(1, 1, "Ready")
	delete(u.Object, "status")
	if _, err := c.Compute(ctx, u); err == nil {
		t.Fatal("no error for a missing status")
	}
}

func TestGroupWideCheck(t *testing.T) {
	c, err := NewChecks([]kustomizev1.CustomHealthCheck{{APIVersion: "example.com/v1",
		HealthCheckExpressions: kustomizev1.HealthCheckExpressions{Current: "status.phase == 'Ready'"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Supports(widget(1, 1, "").GroupVersionKind().GroupKind()) {
		t.Fatal("a check without kind does not cover its group")
	}
	res, err := c.Compute(context.Background(), widget(1, 1, "Ready"))
	if err != nil || res.Status != status.CurrentStatus {
		t.Fatalf("got %v, %v", res, err)
	}
}

func TestNewChecksErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		hcs  []kustomizev1.CustomHealthCheck
		want string
	}{
		{[]kustomizev1.CustomHealthCheck{{APIVersion: "a/v1", Kind: "K"}}, "spec.healthCheckExprs[0].current"},
		{[]kustomizev1.CustomHealthCheck{{APIVersion: "a/v1", Kind: "K",
			HealthCheckExpressions: kustomizev1.HealthCheckExpressions{Current: "true", Failed: "status.("}}}, "spec.healthCheckExprs[0].failed"},
		{[]kustomizev1.CustomHealthCheck{
			{APIVersion: "a/v1", Kind: "K", HealthCheckExpressions: kustomizev1.HealthCheckExpressions{Current: "true"}},
			{APIVersion: "a/v2", Kind: "K", HealthCheckExpressions: kustomizev1.HealthCheckExpressions{Current: "true"}}}, "spec.healthCheckExprs[1]: duplicate"},
		{[]kustomizev1.CustomHealthCheck{{APIVersion: "a/v1", Kind: "K",
			HealthCheckExpressions: kustomizev1.HealthCheckExpressions{Current: strings.Repeat("a||", MaxExprLen) + "true"}}}, "more than the limit"},
	} {
		_, err := NewChecks(tc.hcs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

func TestCostLimit(t *testing.T) {
	c, err := NewChecks([]kustomizev1.CustomHealthCheck{{APIVersion: "a/v1", Kind: "K",
		HealthCheckExpressions: kustomizev1.HealthCheckExpressions{
			Current: "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, a+b+c+d+e+f > 0))))))"}}})
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "a/v1", "kind": "K"}}
	_, err = c.Compute(context.Background(), u)
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("got %v, want a cost limit error", err)
	}
}

func TestReadyExpr(t *testing.T) {
	e, err := ReadyExpr("dep.status.conditions.filter(c, c.type == 'Ready').all(c, c.status == 'True') && self.metadata.name != ''")
	if err != nil {
		t.Fatal(err)
	}
	self := map[string]any{"metadata": map[string]any{"name": "app"}}
	dep := func(s string) map[string]any {
		return map[string]any{"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": s}}}}
	}
	ctx := context.Background()
	if ok, err := e.Ready(ctx, self, dep("True")); err != nil || !ok {
		t.Fatalf("True: %v %v", ok, err)
	}
	if ok, err := e.Ready(ctx, self, dep("False")); err != nil || ok {
		t.Fatalf("False: %v %v", ok, err)
	}
	if _, err := e.Ready(ctx, self, map[string]any{}); err == nil {
		t.Fatal("no error for a missing field")
	}
	// A field of a JSON object is dyn, not bool: Flux refuses it too.
	for _, bad := range []string{"dep.status.(", "'a string'", "other.x == 1", "dep.spec.suspend"} {
		if _, err := ReadyExpr(bad); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
}
