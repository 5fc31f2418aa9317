package build

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestSubstitute(t *testing.T) {
	mk := func(labels map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "cm", "labels": labels},
			"data":     map[string]any{"a": "${cluster}", "b": "${region:=eu-1}", "c": "$${literal}", "d": "x-${cluster}-y"},
		}}
	}
	objs := []*unstructured.Unstructured{mk(nil)}
	if err := Substitute(objs, map[string]string{"cluster": "prod"}); err != nil {
		t.Fatal(err)
	}
	data := objs[0].Object["data"].(map[string]any)
	want := map[string]string{"a": "prod", "b": "eu-1", "c": "${literal}", "d": "x-prod-y"}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("%s = %v, want %s", k, data[k], v)
		}
	}
	err := Substitute([]*unstructured.Unstructured{mk(nil)}, nil)
	if !errors.Is(err, ErrUndefinedVariable) {
		t.Fatalf("strict: %v", err)
	}
	skip := mk(map[string]any{"kustomize.toolkit.fluxcd.io/substitute": "disabled"})
	if err := Substitute([]*unstructured.Unstructured{skip}, nil); err != nil {
		t.Fatal(err)
	}
	if skip.Object["data"].(map[string]any)["a"] != "${cluster}" {
		t.Error("a disabled object was substituted")
	}
}

func TestSubstituteOperators(t *testing.T) {
	vars := map[string]string{"name": "my-app-prod", "empty": "", "word": "hello"}
	for in, want := range map[string]string{
		"${name}":            "my-app-prod",
		"${#name}":           "11",
		"${name:3}":          "app-prod",
		"${name:3:3}":        "app",
		"${name:-4}":         "my-app-prod", // ":-" is a default, as in bash
		"${name: -4}":        "prod",
		"${name:0:-5}":       "my-app",
		"${name/-/_}":        "my_app-prod",
		"${name//-/_}":       "my_app_prod",
		"${name#my-}":        "app-prod",
		"${name%-prod}":      "my-app",
		"${word^}":           "Hello",
		"${word^^}":          "HELLO",
		"${word,}":           "hello",
		"${empty:-fallback}": "fallback",
		"${empty-fallback}":  "",
		"${unset=x}":         "x",
	} {
		var missing []string
		if got := substitute(in, vars, &missing); got != want || len(missing) != 0 {
			t.Errorf("%s = %q (missing %v), want %q", in, got, missing, want)
		}
	}
	var missing []string
	substitute("${nope:2}", vars, &missing)
	if len(missing) != 1 {
		t.Errorf("an operator on an unset variable is not reported: %v", missing)
	}
}
