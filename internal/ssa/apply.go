// Package ssa applies a Kustomization's built objects with server-side
// apply, as Flux's kustomize-controller does (fluxcd/pkg/ssa):
//
//   - in stages (inventory.Stage): CRDs, Namespaces and ClusterRoles, then
//     the "…Class" kinds, each waited for until ready (kstatus Current:
//     a CRD Established) before the next stage, then the custom stage's
//     kinds, then everything else;
//   - each stage dry-run whole before it writes anything: a dry-run error
//     stops the run, naming the object, with nothing of that stage
//     written;
//   - the fields of kubectl's field managers taken over and the
//     last-applied-configuration annotation dropped unless ssa: Merge
//     (Takeover);
//   - normalized first (a Secret's stringData applied as data, default
//     port protocols), as Flux;
//   - only objects whose dry run differs from the live one written, the
//     paths of the drift-ignore rules (spec.ignore) not compared and a
//     live value there kept (ignore.go);
//   - with force, an object refused for an immutable field deleted, and
//     waited for until gone, before it is created again.
//
// Which objects are applied, skipped or forced is internal/inventory's
// rule (ShouldApply, Forced, TakesOver); this package carries it out.
package ssa

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/redact"
)

// Action is what apply did to an object.
type Action string

// Actions, as Flux's change set names them.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Skipped    Action = "skipped"
)

// Change is the outcome for one built object.
type Change struct {
	Object *unstructured.Unstructured
	Action Action
}

// Options configure an apply.
type Options struct {
	// FieldManager owns the applied fields.
	FieldManager string
	// Force recreates objects refused for an immutable field (spec.force);
	// the force annotation asks for it per object.
	Force bool
	// Timeout bounds each wait: a stage becoming ready, a forced object
	// being gone.
	Timeout time.Duration
	// Interval is the poll interval of the waits (default 2s).
	Interval time.Duration
	// OverrideManagers are further field managers whose fields are taken
	// over (Flux's --override-manager).
	OverrideManagers []string
	// StageKinds are applied in a stage of their own, after the classes
	// (Flux's --custom-apply-stage-kinds).
	StageKinds inventory.StageKinds
	// Ignore are the drift-ignore rules (spec.ignore, see ignore.go).
	Ignore []kustomizev1.IgnoreRule

	ignore Ignorer
}

// Apply applies objs in stages and returns the change of each object, in
// the order applied. On error, the changes so far are returned with it.
func Apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, opts Options) ([]Change, error) {
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	var err error
	if opts.ignore, err = compileIgnore(opts.Ignore); err != nil {
		return nil, err
	}
	inventory.SortForApply(objs, opts.StageKinds)
	var out []Change
	for i := 0; i < len(objs); {
		stage, j := inventory.Stage(objs[i], opts.StageKinds), i
		for j < len(objs) && inventory.Stage(objs[j], opts.StageKinds) == stage {
			j++
		}
		changes, err := applyStage(ctx, c, objs[i:j], opts)
		out = append(out, changes...)
		if err != nil {
			return out, err
		}
		if stage == inventory.StageDefinitions || stage == inventory.StageClasses {
			if err := waitReady(ctx, c, changes, opts); err != nil {
				return out, err
			}
		}
		i = j
	}
	return out, nil
}

// step is one object of a stage on its way through apply.
type step struct {
	u, live, dry *unstructured.Unstructured
	skip, force  bool
	// ignore are the drift-ignore paths selecting the dry run.
	ignore [][]string
}

// applyStage dry-runs every object of a stage, then (all passed) writes
// those that changed.
func applyStage(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, opts Options) ([]Change, error) {
	steps := make([]step, len(objs))
	for i, u := range objs {
		s, err := plan(ctx, c, u, opts)
		if err != nil {
			return nil, err
		}
		steps[i] = s
	}
	changes := make([]Change, 0, len(steps))
	for _, s := range steps {
		if s.skip {
			changes = append(changes, Change{Object: s.u, Action: Skipped})
			continue
		}
		a, err := write(ctx, c, s, opts)
		if err != nil {
			return changes, err
		}
		changes = append(changes, Change{Object: s.u, Action: a})
	}
	return changes, nil
}

// plan reads u's live object and dry-runs u; nothing is written.
func plan(ctx context.Context, c client.Client, u *unstructured.Unstructured, opts Options) (step, error) {
	s := step{u: u}
	normalize(u)
	dropInvalidCABundle(u)
	live, err := get(ctx, c, u)
	if err != nil {
		return s, err
	}
	s.live = live
	if !inventory.ShouldApply(u, live) {
		s.skip = true
		return s, nil
	}
	s.dry = u.DeepCopy()
	if err := patch(ctx, c, s.dry, opts, client.DryRunAll); err != nil {
		if live != nil && immutable(err) && inventory.Forced(u, live, opts.Force) {
			s.force = true
			return s, nil
		}
		return s, dryRunError(u, err)
	}
	if live != nil {
		s.ignore = ignoredPaths(opts.ignore, s.dry)
	}
	return s, nil
}

// write applies one planned object: forced recreation first, then the
// takeover of kubectl's fields, then the apply when anything differs.
func write(ctx context.Context, c client.Client, s step, opts Options) (Action, error) {
	name := inventory.Of(s.u).String()
	if s.force {
		if err := recreate(ctx, c, s.live, opts); err != nil {
			return "", fmt.Errorf("%s immutable field detected, %s", name, err)
		}
		s.live, s.dry = nil, s.u.DeepCopy()
		if err := patch(ctx, c, s.dry, opts, client.DryRunAll); err != nil {
			return "", dryRunError(s.u, err)
		}
	}
	cleaned := false
	if s.live != nil && inventory.TakesOver(s.u, s.live) {
		var err error
		if cleaned, err = Takeover(ctx, c, s.live, opts.FieldManager, opts.OverrideManagers); err != nil {
			return "", fmt.Errorf("%s metadata.managedFields cleanup failed: %s", name, redact.Error(err))
		}
	}
	if s.live != nil && !cleaned && !drifted(without(s.live, s.ignore), without(s.dry, s.ignore)) {
		return Unchanged, nil
	}
	payload := s.u.DeepCopy()
	if s.live != nil {
		keepIgnored(payload, s.live, s.dry, s.ignore, opts.FieldManager)
	}
	if err := patch(ctx, c, payload, opts); err != nil {
		return "", fmt.Errorf("%s apply failed: %s", name, redact.Error(err))
	}
	if s.live == nil {
		return Created, nil
	}
	return Configured, nil
}

// get returns u's live object, nil when there is none (or its kind is not
// served yet: the dry run then says why).
func get(ctx context.Context, c client.Client, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(u.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKeyFromObject(u), live)
	switch {
	case err == nil:
		return live, nil
	case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
		return nil, nil
	}
	return nil, fmt.Errorf("%s: %s", inventory.Of(u), redact.Error(err))
}

// patch server-side applies u, taking ownership of conflicting fields.
func patch(ctx context.Context, c client.Client, u *unstructured.Unstructured, opts Options, extra ...client.PatchOption) error {
	po := append([]client.PatchOption{client.FieldOwner(opts.FieldManager), client.ForceOwnership}, extra...)
	return c.Patch(ctx, u, client.Apply, po...)
}

// dryRunError names the object and the API server's reason, as Flux does.
func dryRunError(u *unstructured.Unstructured, err error) error {
	name := inventory.Of(u).String()
	if apierrors.IsNotFound(err) {
		if u.GetNamespace() == "" {
			return fmt.Errorf("%s namespace not specified: %s", name, redact.Error(err))
		}
		return fmt.Errorf("%s not found: %s", name, redact.Error(err))
	}
	reason := ""
	if r := apierrors.ReasonForError(err); r != metav1.StatusReasonUnknown {
		reason = " (" + string(r) + ")"
	}
	if cause, ok := apierrors.StatusCause(err, metav1.CauseTypeFieldManagerConflict); ok {
		reason = " (" + string(cause.Type) + ")"
	}
	return fmt.Errorf("%s dry-run failed%s: %s", name, reason, redact.Error(err))
}

// drifted compares the dry-run result with the live object, ignoring
// server-managed metadata and status.
func drifted(live, dry *unstructured.Unstructured) bool {
	a, err1 := json.Marshal(inventory.Normalize(live).Object)
	b, err2 := json.Marshal(inventory.Normalize(dry).Object)
	return err1 != nil || err2 != nil || string(a) != string(b)
}
