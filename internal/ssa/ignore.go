package ssa

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// Drift-ignore rules (spec.ignore), as Flux's ssa package applies them:
//
//   - a rule's target selects objects as kustomize selectors do (group,
//     version, kind, name and namespace are anchored regular expressions,
//     labelSelector and annotationSelector label-selection expressions),
//     matched against the dry-run object; no target selects every object;
//   - an existing object whose only differences are at ignored paths is
//     not applied (Unchanged);
//   - when it is applied for another difference, each ignored path whose
//     live value differs from the dry run is dropped from the applied
//     object when another apply manager owns it, and otherwise set to the
//     live value: the change made in the cluster stays;
//   - a new object is created with every field of the build;
//   - a diff (lacre diff, as flux diff) neither compares nor shows them.

// An Ignorer holds compiled drift-ignore rules (CompileIgnore).
type Ignorer []ignoreRule

// CompileIgnore compiles spec.ignore; an invalid pattern, selector or
// JSON pointer is an error naming it.
func CompileIgnore(rules []kustomizev1.IgnoreRule) (Ignorer, error) {
	return compileIgnore(rules)
}

// Strip returns copies of live and dry without the paths of the rules
// selecting dry: what a diff compares and shows.
func (ig Ignorer) Strip(live, dry *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured) {
	paths := ignoredPaths(ig, dry)
	return without(live, paths), without(dry, paths)
}

// ignoreRule is a compiled spec.ignore rule.
type ignoreRule struct {
	paths                        [][]string
	group, version, kind         *regexp.Regexp
	name, namespace              *regexp.Regexp
	labelSelector, annotSelector labels.Selector
}

func compileIgnore(rules []kustomizev1.IgnoreRule) (Ignorer, error) {
	out := make([]ignoreRule, 0, len(rules))
	for i, r := range rules {
		var c ignoreRule
		for _, p := range r.Paths {
			segs, err := parsePointer(p)
			if err != nil {
				return nil, fmt.Errorf("spec.ignore[%d]: %w", i, err)
			}
			c.paths = append(c.paths, segs)
		}
		if t := r.Target; t != nil {
			var err error
			for _, f := range []struct {
				what, expr string
				re         **regexp.Regexp
			}{{"group", t.Group, &c.group}, {"version", t.Version, &c.version}, {"kind", t.Kind, &c.kind}, {"name", t.Name, &c.name}, {"namespace", t.Namespace, &c.namespace}} {
				if f.expr == "" {
					continue
				}
				if *f.re, err = regexp.Compile("^(?:" + f.expr + ")$"); err != nil {
					return nil, fmt.Errorf("spec.ignore[%d].target: invalid %s regex %q: %w", i, f.what, f.expr, err)
				}
			}
			if c.labelSelector, err = parseSelector(t.LabelSelector); err != nil {
				return nil, fmt.Errorf("spec.ignore[%d].target: invalid label selector %q: %w", i, t.LabelSelector, err)
			}
			if c.annotSelector, err = parseSelector(t.AnnotationSelector); err != nil {
				return nil, fmt.Errorf("spec.ignore[%d].target: invalid annotation selector %q: %w", i, t.AnnotationSelector, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func parseSelector(s string) (labels.Selector, error) {
	if s == "" {
		return nil, nil
	}
	return labels.Parse(s)
}

// parsePointer splits an RFC 6901 JSON pointer into its unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("invalid JSON pointer %q: it must start with /", p)
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return segs, nil
}

func (r ignoreRule) selects(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	for _, m := range []struct {
		re *regexp.Regexp
		v  string
	}{{r.group, gvk.Group}, {r.version, gvk.Version}, {r.kind, gvk.Kind}, {r.name, u.GetName()}, {r.namespace, u.GetNamespace()}} {
		if m.re != nil && !m.re.MatchString(m.v) {
			return false
		}
	}
	return (r.labelSelector == nil || r.labelSelector.Matches(labels.Set(u.GetLabels()))) &&
		(r.annotSelector == nil || r.annotSelector.Matches(labels.Set(u.GetAnnotations())))
}

// ignoredPaths lists the paths of every rule selecting u.
func ignoredPaths(rules Ignorer, u *unstructured.Unstructured) [][]string {
	var out [][]string
	for _, r := range rules {
		if r.selects(u) {
			out = append(out, r.paths...)
		}
	}
	return out
}

// without returns a copy of u with the paths removed (u itself when
// there are none).
func without(u *unstructured.Unstructured, paths [][]string) *unstructured.Unstructured {
	if len(paths) == 0 || u == nil {
		return u
	}
	c := u.DeepCopy()
	for _, p := range paths {
		removeAt(c.Object, p)
	}
	return c
}

// lookup returns the value at path, and whether there is one.
func lookup(obj any, path []string) (any, bool) {
	for _, s := range path {
		switch n := obj.(type) {
		case map[string]any:
			v, ok := n[s]
			if !ok {
				return nil, false
			}
			obj = v
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			obj = n[i]
		default:
			return nil, false
		}
	}
	return obj, true
}

// removeAt removes the value at path, if there is one.
func removeAt(obj map[string]any, path []string) {
	parent, ok := lookup(obj, path[:len(path)-1])
	if !ok {
		return
	}
	last := path[len(path)-1]
	switch n := parent.(type) {
	case map[string]any:
		delete(n, last)
	case []any:
		if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(n) {
			grand, _ := lookup(obj, path[:len(path)-2])
			setChild(grand, path[len(path)-2], append(n[:i:i], n[i+1:]...))
		}
	}
}

// setAt sets the value at path when its parent exists.
func setAt(obj map[string]any, path []string, v any) {
	parent, ok := lookup(obj, path[:len(path)-1])
	if ok {
		setChild(parent, path[len(path)-1], v)
	}
}

func setChild(parent any, key string, v any) {
	switch n := parent.(type) {
	case map[string]any:
		n[key] = v
	case []any:
		if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(n) {
			n[i] = v
		}
	}
}

// keepIgnored changes payload, applied over live, so that an ignored path
// where live differs from the dry run keeps live's value: dropped when
// another apply manager owns it, set to live's value otherwise.
func keepIgnored(payload, live, dry *unstructured.Unstructured, paths [][]string, own string) {
	for _, p := range paths {
		lv, inLive := lookup(live.Object, p)
		dv, inDry := lookup(dry.Object, p)
		if inLive == inDry && jsonEqual(lv, dv) {
			continue
		}
		if !inLive || ownedByOtherApplier(live, p, own) {
			removeAt(payload.Object, p)
			continue
		}
		setAt(payload.Object, p, lv)
	}
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// ownedByOtherApplier reports whether a server-side apply manager other
// than own owns path of live or a field below it.
func ownedByOtherApplier(live *unstructured.Unstructured, path []string, own string) bool {
	for _, e := range live.GetManagedFields() {
		if e.Manager == own || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(strings.NewReader(string(e.FieldsV1.Raw))); err != nil {
			continue
		}
		found := false
		set.Iterate(func(fp fieldpath.Path) {
			found = found || covers(fp, path, live.Object)
		})
		if found {
			return true
		}
	}
	return false
}

// covers reports whether the managed field fp is at path or below it,
// list elements resolved against the live object.
func covers(fp fieldpath.Path, path []string, obj any) bool {
	if len(fp) < len(path) {
		return false
	}
	for i, s := range path {
		pe := fp[i]
		if pe.FieldName != nil {
			if *pe.FieldName != s {
				return false
			}
			obj, _ = lookup(obj, []string{s})
			continue
		}
		item, ok := lookup(obj, []string{s})
		if !ok || !elementIs(pe, s, item) {
			return false
		}
		obj = item
	}
	return true
}

// elementIs reports whether the list element selected by pe is item, at
// index s.
func elementIs(pe fieldpath.PathElement, s string, item any) bool {
	switch {
	case pe.Index != nil:
		return strconv.Itoa(*pe.Index) == s
	case pe.Value != nil:
		return jsonEqual((*pe.Value).Unstructured(), item)
	case pe.Key != nil:
		m, ok := item.(map[string]any)
		if !ok {
			return false
		}
		for _, f := range *pe.Key {
			if !jsonEqual(f.Value.Unstructured(), m[f.Name]) {
				return false
			}
		}
		return true
	}
	return false
}
