package ssa

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func entry(manager string, op metav1.ManagedFieldsOperationType, sub, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: sub, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

// TestMergeManagers: kubectl's entries (by prefix and operation) are
// merged into the controller's apply entry; other managers, subresources
// and a controller that is the only manager are left as they are.
func TestMergeManagers(t *testing.T) {
	const own = "kustomize-controller"
	apply, update := metav1.ManagedFieldsOperationApply, metav1.ManagedFieldsOperationUpdate
	in := []metav1.ManagedFieldsEntry{
		entry("kubectl-client-side-apply", update, "", `{"f:data":{"f:a":{}}}`),
		entry("hpa", update, "", `{"f:data":{"f:h":{}}}`),
		entry(own, apply, "", `{"f:data":{"f:b":{}}}`),
		entry("kubectl", apply, "", `{"f:data":{"f:c":{}}}`),
		entry("kubectl-edit", update, "status", `{"f:status":{}}`),
		entry("before-first-apply", update, "", `{"f:data":{"f:d":{}}}`),
		entry("custom-tool", update, "", `{"f:data":{"f:e":{}}}`),
	}
	out, changed, err := mergeManagers(in, own, takenOver(own, []string{"custom"}))
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	var got []string
	for _, e := range out {
		got = append(got, e.Manager+"/"+string(e.Operation)+"/"+e.Subresource)
	}
	want := "hpa/Update/ kubectl-edit/Update/status " + own + "/Apply/"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("entries %q, want %q", s, want)
	}
	if f := string(out[2].FieldsV1.Raw); f != `{"f:data":{"f:a":{},"f:b":{},"f:c":{},"f:d":{},"f:e":{}}}` {
		t.Errorf("merged fields %s", f)
	}
	if _, changed, _ := mergeManagers(out, own, takenOver(own, nil)); changed {
		t.Error("a second takeover changed something")
	}
	// No entry of the controller yet: the first taken-over one becomes it.
	out, _, _ = mergeManagers([]metav1.ManagedFieldsEntry{entry("kubectl-client-side-apply", update, "", `{"f:data":{}}`)}, own, takenOver(own, nil))
	if len(out) != 1 || out[0].Manager != own || out[0].Operation != apply {
		t.Errorf("renamed entry %+v", out)
	}
}
