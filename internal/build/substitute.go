package build

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// ErrUndefinedVariable is returned, in strict mode, for ${var} with no
// value and no default.
var ErrUndefinedVariable = errors.New("variable not set (strict mode)")

// ErrVariableName is returned for a variable whose name is not
// [_a-zA-Z][_a-zA-Z0-9]* (a substituteFrom key such as "app.yaml").
var ErrVariableName = errors.New("var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'")

var varNameRe = regexp.MustCompile(`^[_[:alpha:]][_[:alpha:][:digit:]]*$`)

// SubstituteOptions are Flux's substitution switches.
type SubstituteOptions struct {
	// Strict refuses variables without a value and without a default
	// (Flux's StrictPostBuildSubstitutions feature gate, on by default);
	// otherwise they become "".
	Strict bool
	// Always substitutes even when no variable is defined
	// (postBuild.substituteStrategy: Always); otherwise objects are left
	// as they are when vars is empty.
	Always bool
}

// Substitute replaces the variables (envsubst.go lists the syntax) in
// every object with vars (postBuild.substitute and substituteFrom), as
// Flux does: nothing happens when vars is empty (unless Always), newlines
// are removed from the values, objects labelled or annotated
// kustomize.toolkit.fluxcd.io/substitute: disabled are left alone, and
// the whole YAML of each other object (keys included) is substituted.
func Substitute(objs []*unstructured.Unstructured, vars map[string]string, opts SubstituteOptions) error {
	if len(vars) == 0 && !opts.Always {
		return nil
	}
	clean := make(map[string]string, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if !varNameRe.MatchString(k) {
			return fmt.Errorf("%q %w", k, ErrVariableName)
		}
		clean[k] = strings.ReplaceAll(vars[k], "\n", "")
	}
	lookup := func(name string) (string, bool) {
		v, ok := clean[name]
		return v, ok || !opts.Strict
	}
	for _, u := range objs {
		if u.GetLabels()[kustomizev1.SubstituteAnnotation] == kustomizev1.DisabledValue ||
			u.GetAnnotations()[kustomizev1.SubstituteAnnotation] == kustomizev1.DisabledValue {
			continue
		}
		data, err := yaml.Marshal(u.Object)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte("$")) {
			continue
		}
		out, err := expand(string(data), lookup)
		if err != nil {
			return fmt.Errorf("%s/%s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(out), &m); err != nil {
			return fmt.Errorf("%s/%s/%s: substitution produced invalid YAML", u.GetKind(), u.GetNamespace(), u.GetName())
		}
		u.Object = m
	}
	return nil
}
