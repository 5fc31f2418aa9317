package build

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// ErrUndefinedVariable is returned for ${var} with no value and no default.
var ErrUndefinedVariable = errors.New("variable not set (strict substitution)")

// varRe matches ${var}, ${#var} and ${var<op><arg>} for the bash-style
// operators drone/envsubst (Flux's substitution library) supports:
// :- := - = (defaults), :pos[:len] (substring), / // (replace), # ## %
// %% (trim), ^ ^^ , ,, (case).
var varRe = regexp.MustCompile(`\$\{(#?)([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=]|:|//|/|##|#|%%|%|\^\^|\^|,,|,)([^}]*))?\}`)

// Substitute replaces ${var}, ${var:-default}, ${var:=default} and the other
// bash-style forms varRe lists in every
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
		length, name, op, arg := g[1] == "#", g[2], g[3], g[4]
		v, ok := vars[name]
		switch op {
		case ":-", ":=", "-", "=":
			if ok && (v != "" || !strings.HasPrefix(op, ":")) {
				return v
			}
			return arg
		}
		if !ok {
			*missing = append(*missing, name)
			return m
		}
		if length {
			if op != "" {
				return m
			}
			return strconv.Itoa(len([]rune(v)))
		}
		return applyOp(v, op, arg)
	})
	return strings.ReplaceAll(s, esc, "${")
}

// applyOp applies one bash-style string operator to v.
func applyOp(v, op, arg string) string {
	switch op {
	case "":
		return v
	case ":":
		r := []rune(v)
		posS, lenS, hasLen := strings.Cut(arg, ":")
		pos, err := strconv.Atoi(strings.TrimSpace(posS))
		if err != nil {
			return v
		}
		if pos < 0 {
			pos += len(r)
		}
		pos = max(0, min(pos, len(r)))
		end := len(r)
		if hasLen {
			if n, err := strconv.Atoi(strings.TrimSpace(lenS)); err == nil {
				if n < 0 {
					end = max(pos, len(r)+n)
				} else {
					end = min(len(r), pos+n)
				}
			}
		}
		return string(r[pos:end])
	case "/", "//":
		old, repl, _ := strings.Cut(arg, "/")
		if old == "" {
			return v
		}
		if op == "/" {
			return strings.Replace(v, old, repl, 1)
		}
		return strings.ReplaceAll(v, old, repl)
	case "#", "##":
		return strings.TrimPrefix(v, arg)
	case "%", "%%":
		return strings.TrimSuffix(v, arg)
	case "^":
		r := []rune(v)
		if len(r) > 0 {
			r[0] = unicode.ToUpper(r[0])
		}
		return string(r)
	case "^^":
		return strings.ToUpper(v)
	case ",":
		r := []rune(v)
		if len(r) > 0 {
			r[0] = unicode.ToLower(r[0])
		}
		return string(r)
	case ",,":
		return strings.ToLower(v)
	}
	return v
}
