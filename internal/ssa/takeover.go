package ssa

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// The metadata Flux removes before applying (unless ssa: Merge): kubectl's
// last-applied annotation and the marks of Flux v1.
var (
	cleanupAnnotations = []string{corev1.LastAppliedConfigAnnotation, "kustomize.toolkit.fluxcd.io/checksum", "fluxcd.io/sync-checksum"}
	cleanupLabels      = []string{"fluxcd.io/sync-gc-mark"}
)

// manager is a field manager whose fields are taken over: its name (a
// prefix, as Flux matches) and operation.
type manager struct {
	prefix string
	op     metav1.ManagedFieldsOperationType
}

// takenOver lists, as Flux does, kubectl (server-side apply and every
// client-side command: kubectl-client-side-apply, kubectl-edit, …),
// before-first-apply (kubectl's upgrade to server-side apply), the
// controller's own manager writing with Update (Flux before server-side
// apply), and the --override-manager names.
func takenOver(own string, extra []string) []manager {
	ms := []manager{
		{"kubectl", metav1.ManagedFieldsOperationApply},
		{"kubectl", metav1.ManagedFieldsOperationUpdate},
		{"before-first-apply", metav1.ManagedFieldsOperationUpdate},
		{own, metav1.ManagedFieldsOperationUpdate},
	}
	for _, m := range extra {
		ms = append(ms, manager{m, metav1.ManagedFieldsOperationApply}, manager{m, metav1.ManagedFieldsOperationUpdate})
	}
	return ms
}

func (m manager) matches(e metav1.ManagedFieldsEntry) bool {
	return e.Operation == m.op && e.Subresource == "" && strings.HasPrefix(e.Manager, m.prefix)
}

// jsonPatch is one RFC 6902 operation.
type jsonPatch struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Takeover moves the fields of the taken-over managers (see takenOver) to
// own's apply entry, so that the next apply removes what they added and
// Git no longer holds, and removes the last-applied annotation; live is
// updated from the API server's answer. It reports whether it wrote.
func Takeover(ctx context.Context, c client.Client, live *unstructured.Unstructured, own string, extra []string) (bool, error) {
	var ops []jsonPatch
	for _, k := range cleanupAnnotations {
		if _, ok := live.GetAnnotations()[k]; ok {
			ops = append(ops, jsonPatch{Op: "remove", Path: "/metadata/annotations/" + escapePointer(k)})
		}
	}
	for _, k := range cleanupLabels {
		if _, ok := live.GetLabels()[k]; ok {
			ops = append(ops, jsonPatch{Op: "remove", Path: "/metadata/labels/" + escapePointer(k)})
		}
	}
	entries, changed, err := mergeManagers(live.GetManagedFields(), own, takenOver(own, extra))
	if err != nil {
		return false, err
	}
	if changed {
		ops = append(ops, jsonPatch{Op: "replace", Path: "/metadata/managedFields", Value: entries})
	}
	if len(ops) == 0 {
		return false, nil
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return false, err
	}
	return true, c.Patch(ctx, live, client.RawPatch(types.JSONPatchType, raw), client.FieldOwner(own))
}

// mergeManagers returns entries with those of the taken-over managers
// merged into own's apply entry (created from the first of them when own
// has none), and whether anything changed.
func mergeManagers(entries []metav1.ManagedFieldsEntry, own string, ms []manager) ([]metav1.ManagedFieldsEntry, bool, error) {
	ownAt := -1
	for i, e := range entries {
		if e.Manager == own && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" {
			ownAt = i
		}
	}
	var merged *metav1.ManagedFieldsEntry
	if ownAt >= 0 {
		e := entries[ownAt]
		merged = &e
	}
	out := make([]metav1.ManagedFieldsEntry, 0, len(entries))
	changed := false
	for i, e := range entries {
		if i == ownAt {
			continue
		}
		if !takenOverBy(e, ms) {
			out = append(out, e)
			continue
		}
		changed = true
		if merged == nil {
			e.Manager, e.Operation = own, metav1.ManagedFieldsOperationApply
			merged = &e
			continue
		}
		u, err := unionFields(merged.FieldsV1, e.FieldsV1)
		if err != nil {
			return nil, false, fmt.Errorf("merging the fields of %q: %w", e.Manager, err)
		}
		merged.FieldsV1 = u
	}
	if !changed {
		return entries, false, nil
	}
	return append(out, *merged), true, nil
}

func takenOverBy(e metav1.ManagedFieldsEntry, ms []manager) bool {
	for _, m := range ms {
		if m.matches(e) {
			return true
		}
	}
	return false
}

// unionFields is the union of two managed field sets.
func unionFields(a, b *metav1.FieldsV1) (*metav1.FieldsV1, error) {
	if a == nil {
		return b, nil
	}
	if b == nil {
		return a, nil
	}
	var sa, sb fieldpath.Set
	if err := sa.FromJSON(bytes.NewReader(a.Raw)); err != nil {
		return nil, err
	}
	if err := sb.FromJSON(bytes.NewReader(b.Raw)); err != nil {
		return nil, err
	}
	raw, err := sa.Union(&sb).ToJSON()
	if err != nil {
		return nil, err
	}
	return &metav1.FieldsV1{Raw: raw}, nil
}

// escapePointer escapes a map key for a JSON pointer (RFC 6901).
func escapePointer(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}
