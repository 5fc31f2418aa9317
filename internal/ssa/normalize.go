package ssa

import (
	"encoding/base64"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Normalization before apply, as Flux's (fluxcd/pkg/ssa/normalize), for
// upstream server-side apply issues.

// podSpecPaths are where the kinds Flux normalizes keep their pod spec.
var podSpecPaths = map[string][]string{
	"v1/Pod":              {"spec"},
	"apps/v1/Deployment":  {"spec", "template", "spec"},
	"apps/v1/StatefulSet": {"spec", "template", "spec"},
	"apps/v1/DaemonSet":   {"spec", "template", "spec"},
	"apps/v1/ReplicaSet":  {"spec", "template", "spec"},
	"batch/v1/Job":        {"spec", "template", "spec"},
	"batch/v1/CronJob":    {"spec", "jobTemplate", "spec", "template", "spec"},
}

// normalize rewrites u before it is dry-run and applied: a Secret's
// stringData moved into data (so keys removed from Git are removed from
// the cluster; kubernetes#108008); ports without a protocol given TCP on
// Services and pod containers (structured-merge-diff#130); status dropped
// but on CRDs.
func normalize(u *unstructured.Unstructured) {
	key := u.GetAPIVersion() + "/" + u.GetKind()
	switch key {
	case "v1/Secret":
		secretStringData(u)
	case "v1/Service":
		defaultProtocol(u.Object, "spec", "ports")
	}
	if path, ok := podSpecPaths[key]; ok {
		containers, found, err := unstructured.NestedSlice(u.Object, append(path, "containers")...)
		if err == nil && found {
			for _, c := range containers {
				if m, ok := c.(map[string]any); ok {
					defaultProtocol(m, "ports")
				}
			}
			_ = unstructured.SetNestedSlice(u.Object, containers, append(path, "containers")...)
		}
	}
	if u.GetKind() != "CustomResourceDefinition" {
		delete(u.Object, "status")
	}
}

// secretStringData moves stringData into data, stringData winning.
func secretStringData(u *unstructured.Unstructured) {
	sd, ok := u.Object["stringData"].(map[string]any)
	if !ok {
		return
	}
	if len(sd) > 0 {
		data, _ := u.Object["data"].(map[string]any)
		if data == nil {
			data = map[string]any{}
		}
		for k, v := range sd {
			if s, ok := v.(string); ok {
				data[k] = base64.StdEncoding.EncodeToString([]byte(s))
			}
		}
		u.Object["data"] = data
	}
	delete(u.Object, "stringData")
}

// defaultProtocol sets protocol TCP on the ports at path in obj that have
// none.
func defaultProtocol(obj map[string]any, path ...string) {
	ports, found, err := unstructured.NestedSlice(obj, path...)
	if err != nil || !found {
		return
	}
	for _, p := range ports {
		if m, ok := p.(map[string]any); ok {
			if proto, _ := m["protocol"].(string); proto == "" {
				m["protocol"] = "TCP"
			}
		}
	}
	_ = unstructured.SetNestedSlice(obj, ports, path...)
}
