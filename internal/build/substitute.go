package build

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// ErrUndefinedVariable is returned for ${var} with no value and no default.
var ErrUndefinedVariable = errors.New("variable not set (strict substitution)")

var varRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])([^}]*))?\}`)

// Substitute replaces ${var}, ${var:-default} and ${var:=default} in every
// string of the objects with vars (postBuild.substitute and substituteFrom),
// except in objects labelled or annotated
// kustomize.toolkit.fluxcd.io/substitute: disabled. Unknown variables
// without a default are an error, as in Flux's strict mode; $${var} escapes.
func Substitute(objs []*unstructured.Unstructured, vars map[string]string) error {
	for _, u := range objs {
		if u.GetLabels()[kustomizev1.SubstituteAnnotation] == kustomizev1.DisabledValue ||
			u.GetAnnotations()[kustomizev1.SubstituteAnnotation] == kustomizev1.DisabledValue {
			continue
		}
		data, err := yaml.Marshal(u.Object)
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), "${") {
			continue
		}
		var missing []string
		out := substitute(string(data), vars, &missing)
		if len(missing) > 0 {
			return fmt.Errorf("%s/%s/%s: %w: %s", u.GetKind(), u.GetNamespace(), u.GetName(), ErrUndefinedVariable, strings.Join(missing, ", "))
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(out), &m); err != nil {
			return fmt.Errorf("%s/%s/%s: substitution produced invalid YAML", u.GetKind(), u.GetNamespace(), u.GetName())
		}
		u.Object = m
	}
	return nil
}

func substitute(s string, vars map[string]string, missing *[]string) string {
	const esc = "\x00lacre-dollar\x00"
	s = strings.ReplaceAll(s, "$${", esc)
	s = varRe.ReplaceAllStringFunc(s, func(m string) string {
		g := varRe.FindStringSubmatch(m)
		name, op, def := g[1], g[2], g[3]
		v, ok := vars[name]
		if ok && (v != "" || !strings.HasPrefix(op, ":")) {
			return v
		}
		if op != "" {
			return def
		}
		*missing = append(*missing, name)
		return m
	})
	return strings.ReplaceAll(s, esc, "${")
}
