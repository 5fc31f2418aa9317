package celhealth

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// Checks are the compiled spec.healthCheckExprs, by GroupKind; an entry
// without kind covers its whole API group (Flux).
type Checks struct {
	byGK map[schema.GroupKind]*evaluator
}

type evaluator struct {
	current, inProgress, failed *Expr
}

// NewChecks compiles hcs. The error names the field at fault
// (spec.healthCheckExprs[i].current, ...).
func NewChecks(hcs []kustomizev1.CustomHealthCheck) (*Checks, error) {
	c := &Checks{byGK: make(map[schema.GroupKind]*evaluator, len(hcs))}
	for i, hc := range hcs {
		field := fmt.Sprintf("spec.healthCheckExprs[%d]", i)
		gk := schema.FromAPIVersionAndKind(hc.APIVersion, hc.Kind).GroupKind()
		if _, dup := c.byGK[gk]; dup {
			return nil, fmt.Errorf("%s: duplicate custom health check for GroupKind %q", field, gk.String())
		}
		if hc.Current == "" {
			return nil, fmt.Errorf("%s.current: expression not specified", field)
		}
		ev := &evaluator{}
		for _, x := range []struct {
			name string
			src  string
			dst  **Expr
		}{{"current", hc.Current, &ev.current}, {"inProgress", hc.InProgress, &ev.inProgress}, {"failed", hc.Failed, &ev.failed}} {
			if x.src == "" {
				continue
			}
			e, err := compile(x.src)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", field, x.name, err)
			}
			*x.dst = e
		}
		c.byGK[gk] = ev
	}
	return c, nil
}

// find returns the evaluator for gk: its own kind first, else its group.
func (c *Checks) find(gk schema.GroupKind) *evaluator {
	if c == nil {
		return nil
	}
	if ev, ok := c.byGK[gk]; ok {
		return ev
	}
	return c.byGK[schema.GroupKind{Group: gk.Group}]
}

// Supports says whether an expression covers objects of gk.
func (c *Checks) Supports(gk schema.GroupKind) bool { return c.find(gk) != nil }

// Compute returns u's status by the expressions covering its kind, as
// Flux does: InProgress while status.observedGeneration (when set)
// differs from metadata.generation; then the first of inProgress, failed,
// current that is true; InProgress when none is. The expressions see
// u's top-level fields (metadata, spec, status, ...) as variables.
func (c *Checks) Compute(ctx context.Context, u *unstructured.Unstructured) (*status.Result, error) {
	ev := c.find(u.GroupVersionKind().GroupKind())
	if ev == nil {
		return nil, fmt.Errorf("no health check expression for %s", u.GroupVersionKind().GroupKind())
	}
	obj := u.UnstructuredContent()
	if og, ok, err := unstructured.NestedInt64(obj, "status", "observedGeneration"); err == nil && ok {
		if g, ok, err := unstructured.NestedInt64(obj, "metadata", "generation"); err == nil && ok && g != og {
			return &status.Result{Status: status.InProgressStatus, Message: "status.observedGeneration differs from metadata.generation"}, nil
		}
	}
	for _, x := range []struct {
		e *Expr
		s status.Status
	}{{ev.inProgress, status.InProgressStatus}, {ev.failed, status.FailedStatus}, {ev.current, status.CurrentStatus}} {
		if x.e == nil {
			continue
		}
		ok, err := x.e.Bool(ctx, obj)
		if err != nil {
			return nil, err
		}
		if ok {
			return &status.Result{Status: x.s, Message: fmt.Sprintf("health check expression %q is true", x.e.src)}, nil
		}
	}
	return &status.Result{Status: status.InProgressStatus, Message: "no health check expression is true"}, nil
}
