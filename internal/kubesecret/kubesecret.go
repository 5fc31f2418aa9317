// Package kubesecret recognises Kubernetes Secret manifests that are not
// SOPS-encrypted. It is small on purpose: the controller's
// --require-encrypted-secrets and the CLI's check secrets (which runs in
// the lean lacre executable) share it without linking Kubernetes.
package kubesecret

import (
	"bytes"

	"go.yaml.in/yaml/v3"

	"github.com/lacre/lacre/sops/formats"
)

// Plain reports whether a YAML or JSON manifest file holds a v1 Secret (or
// a Secret without apiVersion) without sops metadata in any of its
// documents.
func Plain(name string, data []byte) bool {
	f := formats.FormatForPath(name)
	if f != formats.YAML && f != formats.JSON {
		return false
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return false
		}
		if m["kind"] == "Secret" && m["sops"] == nil {
			if v, _ := m["apiVersion"].(string); v == "v1" || v == "" {
				return true
			}
		}
	}
}
