package build

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func cmWith(labels map[string]any, data map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "cm", "labels": labels},
		"data":     data,
	}}
}

func TestSubstitute(t *testing.T) {
	mk := func(labels map[string]any) *unstructured.Unstructured {
		return cmWith(labels, map[string]any{"a": "${cluster}", "b": "${region:=eu-1}", "c": "$${literal}", "d": "x-${cluster}-y", "e": "pa$$word"})
	}
	strict := SubstituteOptions{Strict: true}
	objs := []*unstructured.Unstructured{mk(nil)}
	if err := Substitute(objs, map[string]string{"cluster": "pr\nod\n"}, strict); err != nil {
		t.Fatal(err)
	}
	data := objs[0].Object["data"].(map[string]any)
	want := map[string]string{"a": "prod", "b": "eu-1", "c": "${literal}", "d": "x-prod-y", "e": "pa$word"}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("%s = %v, want %s", k, data[k], v)
		}
	}
	if err := Substitute([]*unstructured.Unstructured{mk(nil)}, map[string]string{"other": "x"}, strict); !errors.Is(err, ErrUndefinedVariable) {
		t.Fatalf("strict: %v", err)
	}
	// Not strict (StrictPostBuildSubstitutions=false): unset is "".
	lax := mk(nil)
	if err := Substitute([]*unstructured.Unstructured{lax}, map[string]string{"other": "x"}, SubstituteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := lax.Object["data"].(map[string]any)["d"]; got != "x--y" {
		t.Errorf("not strict: d = %v", got)
	}
	// No variable defined: nothing is substituted, not even $$ (Flux skips).
	none := mk(nil)
	if err := Substitute([]*unstructured.Unstructured{none}, nil, strict); err != nil {
		t.Fatal(err)
	}
	if got := none.Object["data"].(map[string]any)["a"]; got != "${cluster}" {
		t.Errorf("substituted with no variables: a = %v", got)
	}
	// ... unless substituteStrategy: Always.
	always := mk(nil)
	if err := Substitute([]*unstructured.Unstructured{always}, nil, SubstituteOptions{Strict: true, Always: true}); !errors.Is(err, ErrUndefinedVariable) {
		t.Fatalf("Always, strict: %v", err)
	}
	for _, l := range []map[string]any{{"kustomize.toolkit.fluxcd.io/substitute": "disabled"}} {
		skip := mk(l)
		if err := Substitute([]*unstructured.Unstructured{skip}, map[string]string{"x": "y"}, strict); err != nil {
			t.Fatal(err)
		}
		if skip.Object["data"].(map[string]any)["a"] != "${cluster}" {
			t.Error("a disabled object was substituted")
		}
	}
	if err := Substitute([]*unstructured.Unstructured{mk(nil)}, map[string]string{"app.yaml": "x"}, strict); !errors.Is(err, ErrVariableName) {
		t.Errorf("invalid name: %v", err)
	}
}

// TestSubstituteOperators pins the syntax of Flux's substitution library
// (fluxcd/pkg/envsubst), including where it differs from bash.
func TestSubstituteOperators(t *testing.T) {
	vars := map[string]string{"name": "my-app-prod", "empty": "", "word": "hello", "path": "a/b/c", "u": "éa"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for in, want := range map[string]string{
		"${name}":              "my-app-prod",
		"${#name}":             "11",
		"${#u}":                "3", // bytes
		"${name:3}":            "app-prod",
		"${name:3:3}":          "app",
		"${name:3:100}":        "app-prod",
		"${name:-4}":           "my-app-prod", // ":-" is a default
		"${name: -4}":          "my-app-prod", // " -4" is no number: the value
		"${name:-4:2}":         "my-app-prod",
		"${word:10}":           "",
		"${word:x}":            "hello",
		"${name/-/_}":          "my_app-prod",
		"${name//-/_}":         "my_app_prod",
		"${name/-/}":           "myapp-prod",
		"${name/#my/your}":     "your-app-prod",
		"${name/#app/x}":       "my-app-prod",
		"${name/%prod/dev}":    "my-app-dev",
		"${path/\\//:}":        "a:b/c",
		"${name#my-}":          "app-prod",
		"${name#*-}":           "app-prod",
		"${name##*-}":          "prod",
		"${name%-*}":           "my-app",
		"${name%%-*}":          "my",
		"${name#m?-}":          "app-prod",
		"${name#[a-m]y}":       "-app-prod",
		"${name#[^a-m]y}":      "my-app-prod",
		"${name#x*}":           "my-app-prod",
		"${path##*/}":          "c", // * matches /
		"${path%/*}":           "a/b",
		"${u#?}":               "a",
		"${word^}":             "Hello",
		"${word^^}":            "HELLO",
		"${word,}":             "hello",
		"${word,^}":            "hello",
		"${empty:-fallback}":   "fallback",
		"${empty:=fallback}":   "fallback",
		"${empty:+alt}":        "alt", // Flux's library: a default, not bash's alternative
		"${word:+alt}":         "hello",
		"${unset=x}":           "x",
		"${unset:-a${word}b}":  "ahellob",
		"${unset:-}":           "",
		"$${word}":             "${word}",
		"$$$${word}":           "$${word}",
		"a$b $ $1 }":           "a$b $ $1 }",
		"${word}${name:0:2}-x": "hellomy-x",
	} {
		if got, err := expand(in, lookup); got != want || err != nil {
			t.Errorf("%s = %q (%v), want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]error{
		"${nope}":            ErrUndefinedVariable,
		"${nope:2}":          ErrUndefinedVariable,
		"${#nope}":           ErrUndefinedVariable,
		"${word:-${nope}}":   ErrUndefinedVariable, // arguments are evaluated first
		"${empty-fallback}":  ErrBadSubstitution,   // only :- and = forms
		"${word":             ErrBadSubstitution,
		"${word x}":          ErrBadSubstitution,
		"${}":                ErrBadSubstitution,
		"${word/a}":          ErrBadSubstitution,
		"${word:}":           ErrBadSubstitution,
		"${word#}":           ErrBadSubstitution,
		"${name:0:-5}":       ErrSubstring,
		"text ${word:-x":     ErrBadSubstitution,
		"${word/${nope}/x}":  ErrUndefinedVariable,
		"${word^^x}":         ErrBadSubstitution,
		"ok ${word} ${bad!}": ErrBadSubstitution,
	} {
		if _, err := expand(in, lookup); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", in, err, want)
		}
	}
	lax := func(n string) (string, bool) { return vars[n], true }
	for in, want := range map[string]string{"${nope}": "", "${#nope}": "0", "${nope:-d}": "d", "${nope/a/b}": ""} {
		if got, err := expand(in, lax); got != want || err != nil {
			t.Errorf("not strict: %s = %q (%v), want %q", in, got, err, want)
		}
	}
}
