package ssa

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

func deployment(name string, labels map[string]any, replicas int64, image string) *unstructured.Unstructured {
	md := map[string]any{"name": name, "namespace": "apps", "annotations": map[string]any{"a/b": "c"}}
	if labels != nil {
		md["labels"] = labels
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": md,
		"spec": map[string]any{
			"replicas": replicas,
			"template": map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "app", "image": image},
			}}},
		},
	}}
}

// TestIgnoreTargets: a rule's target selects as Flux's (anchored regular
// expressions, label and annotation selectors); no target selects all;
// invalid patterns, selectors and pointers are errors naming them.
func TestIgnoreTargets(t *testing.T) {
	d := deployment("web-1", map[string]any{"tier": "web"}, 1, "a")
	for _, c := range []struct {
		target *kustomizev1.Selector
		want   bool
	}{
		{nil, true},
		{&kustomizev1.Selector{Group: "apps", Version: "v1", Kind: "Deployment", Name: "web-.*", Namespace: "apps"}, true},
		{&kustomizev1.Selector{Kind: "Deploy"}, false}, // anchored
		{&kustomizev1.Selector{Group: ""}, true},
		{&kustomizev1.Selector{Name: "web"}, false},
		{&kustomizev1.Selector{LabelSelector: "tier in (web,api)"}, true},
		{&kustomizev1.Selector{LabelSelector: "tier=api"}, false},
		{&kustomizev1.Selector{AnnotationSelector: "a/b=c"}, true},
		{&kustomizev1.Selector{AnnotationSelector: "!a/b"}, false},
	} {
		rules, err := compileIgnore([]kustomizev1.IgnoreRule{{Paths: []string{"/spec/replicas"}, Target: c.target}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(ignoredPaths(rules, d)) == 1; got != c.want {
			t.Errorf("%+v: selected %v", c.target, got)
		}
	}
	for _, c := range []struct {
		rule kustomizev1.IgnoreRule
		want string
	}{
		{kustomizev1.IgnoreRule{Paths: []string{"spec/replicas"}}, `spec.ignore[0]: invalid JSON pointer "spec/replicas"`},
		{kustomizev1.IgnoreRule{Paths: []string{"/a"}, Target: &kustomizev1.Selector{Kind: "("}}, `spec.ignore[0].target: invalid kind regex "("`},
		{kustomizev1.IgnoreRule{Paths: []string{"/a"}, Target: &kustomizev1.Selector{LabelSelector: "a in ("}}, `spec.ignore[0].target: invalid label selector`},
	} {
		if _, err := compileIgnore([]kustomizev1.IgnoreRule{c.rule}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v", c.rule, err)
		}
	}
}

// TestKeepIgnored: an ignored path changed in the cluster is dropped from
// the applied object when another apply manager owns it (list elements
// resolved by their keys), set to the live value otherwise, removed when
// gone from the live object; unchanged and escaped paths work.
func TestKeepIgnored(t *testing.T) {
	const own = "kustomize-controller"
	live := deployment("web", nil, 5, "live")
	live.SetAnnotations(map[string]string{"a/b": "live"})
	dry := deployment("web", nil, 1, "git")
	payload := deployment("web", nil, 1, "git")
	paths := [][]string{}
	for _, p := range []string{"/spec/replicas", "/spec/template/spec/containers/0/image", "/metadata/annotations/a~1b", "/metadata/labels"} {
		s, err := parsePointer(p)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, s)
	}
	// replicas: an Update manager (an autoscaler) changed it: adopted.
	live.SetManagedFields([]metav1.ManagedFieldsEntry{
		{Manager: own, Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}},
		{Manager: "hpa", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}},
		{Manager: "image-updater", Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{
			Raw: []byte(`{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:name":{}}}}}}}`)}},
	})
	keepIgnored(payload, live, dry, paths, own)
	spec := payload.Object["spec"].(map[string]any)
	if spec["replicas"] != int64(5) {
		t.Errorf("replicas not adopted: %v", spec["replicas"])
	}
	c := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if _, ok := c["image"]; ok || c["name"] != "app" {
		t.Errorf("image owned by another applier not dropped: %v", c)
	}
	if payload.GetAnnotations()["a/b"] != "live" {
		t.Errorf("escaped pointer: %v", payload.GetAnnotations())
	}
	if _, ok := payload.Object["metadata"].(map[string]any)["labels"]; ok {
		t.Errorf("labels equal in live and dry run yet changed: %v", payload.Object["metadata"])
	}

	// Gone from the live object: removed from the applied one.
	delete(live.Object["spec"].(map[string]any), "replicas")
	payload = deployment("web", nil, 1, "git")
	keepIgnored(payload, live, dry, paths[:1], own)
	if _, ok := payload.Object["spec"].(map[string]any)["replicas"]; ok {
		t.Errorf("replicas removed in the cluster still applied")
	}
	if d := without(dry, paths[:2]); d.Object["spec"].(map[string]any)["replicas"] != nil {
		t.Errorf("without: %v", d.Object)
	}
}

// FuzzIgnorePaths: any pointer parses or is refused, and stripping,
// keeping and ownership checks never panic.
func FuzzIgnorePaths(f *testing.F) {
	for _, s := range []string{"/spec/replicas", "/spec/template/spec/containers/0", "/spec/template/spec/containers/-1/image", "/", "//", "/metadata/annotations/a~1b~0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs, err := parsePointer(p)
		if err != nil {
			return
		}
		live, dry := deployment("web", map[string]any{"a": "b"}, 3, "live"), deployment("web", nil, 1, "git")
		live.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "other", Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{}}}}}}}`)}}})
		payload := dry.DeepCopy()
		keepIgnored(payload, live, dry, [][]string{segs}, "own")
		_ = without(live, [][]string{segs})
	})
}
