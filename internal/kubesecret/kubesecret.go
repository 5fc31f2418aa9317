// Package kubesecret owns the "plain Secret" rule: a Kubernetes Secret
// manifest that is not SOPS-encrypted. It is small on purpose: the
// controller's --require-encrypted-secrets and the CLI's check secrets
// (which runs in the lean lacre executable) share it without linking
// Kubernetes. Whether a file is SOPS-encrypted is formats.Sniff's answer.
package kubesecret

import (
	"bytes"

	"go.yaml.in/yaml/v3"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
)

// Plain reports whether a YAML or JSON manifest file that is not
// SOPS-encrypted (formats.Sniff) holds a v1 Secret (or a Secret without
// apiVersion) without sops metadata in one of its documents.
func Plain(name string, data []byte) bool {
	f, enc := formats.Sniff(name, data)
	if enc || (f != formats.YAML && f != formats.JSON) {
		return false
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return false
		}
		if m["kind"] == "Secret" && m[sops.MetadataKey] == nil {
			if v, _ := m["apiVersion"].(string); v == "v1" || v == "" {
				return true
			}
		}
	}
}
