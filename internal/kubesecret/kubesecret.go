// Package kubesecret owns the "plain Secret" rule: every value of a
// Kubernetes Secret (its data and stringData) must come from a value that
// was SOPS-encrypted in Git. It is small on purpose: the controller's
// --require-encrypted-secrets (on the built objects, see internal/build)
// and the CLI's check secrets (on each file, in the lean lacre executable)
// share it without linking Kubernetes.
package kubesecret

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/lacre/lacre/sops"
)

// Unproven returns the fields ("data.password", "items[2].stringData.k")
// of the v1 Secrets in obj (a Secret, or a kind: List of objects) whose
// values proven does not vouch for. Empty and null values are never
// reported: they hold nothing to protect.
func Unproven(obj map[string]any, proven func(field, value string) bool) []string {
	var out []string
	if obj["kind"] == "List" {
		items, _ := obj["items"].([]any)
		for i, it := range items {
			if m, ok := it.(map[string]any); ok {
				for _, f := range Unproven(m, proven) {
					out = append(out, fmt.Sprintf("items[%d].%s", i, f))
				}
			}
		}
		return out
	}
	if !IsSecret(obj) {
		return nil
	}
	for _, field := range []string{"data", "stringData"} {
		m, _ := obj[field].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			v := m[k]
			if v == nil {
				continue
			}
			s, ok := v.(string)
			if !ok {
				s = fmt.Sprint(v)
			}
			if s != "" && !proven(field, s) {
				out = append(out, field+"."+k)
			}
		}
	}
	return out
}

// IsSecret reports whether obj is a v1 Secret (or a Secret without
// apiVersion).
func IsSecret(obj map[string]any) bool {
	if obj["kind"] != "Secret" {
		return false
	}
	v, _ := obj["apiVersion"].(string)
	return v == "v1" || v == ""
}

// encrypted vouches for a value still in its ENC[...] form in Git.
func encrypted(_, v string) bool { return sops.IsEncrypted(v) }

// Plain reports whether a file, read as YAML or JSON whatever its name
// (kustomize reads resources that way), holds a Secret, on its own or in
// a kind: List, that is not SOPS-encrypted: one without sops metadata, or
// one with a value that is not an ENC[...] value (metadata that leaves
// stringData in clear, --encrypted-regex '^data$'). Comments do not
// count, only parsed values do.
func Plain(name string, data []byte) bool {
	if !bytes.Contains(data, []byte("Secret")) {
		return false
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc any
		if err := dec.Decode(&doc); err != nil {
			return false
		}
		if m, ok := doc.(map[string]any); ok && plainDoc(m) {
			return true
		}
	}
}

func plainDoc(m map[string]any) bool {
	if m["kind"] == "List" {
		items, _ := m["items"].([]any)
		for _, it := range items {
			if o, ok := it.(map[string]any); ok && plainDoc(o) {
				return true
			}
		}
		return false
	}
	if !IsSecret(m) {
		return false
	}
	return m[sops.MetadataKey] == nil || len(Unproven(m, encrypted)) > 0
}
