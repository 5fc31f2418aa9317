package build

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/redact"
)

// The kustomization a build runs: the spec's overlays, a generated
// kustomization.yaml when the directory has none, and the refusal of
// remote resources.

// applyCommonMetadata adds spec.commonMetadata's labels and annotations
// to u.
func applyCommonMetadata(u *unstructured.Unstructured, cm *kustomizev1.CommonMetadata) {
	if cm == nil {
		return
	}
	if len(cm.Labels) > 0 {
		u.SetLabels(merged(u.GetLabels(), cm.Labels))
	}
	if len(cm.Annotations) > 0 {
		u.SetAnnotations(merged(u.GetAnnotations(), cm.Annotations))
	}
}

// merged returns m with add's entries set (a new map when m is nil).
func merged(m, add map[string]string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, add)
	return m
}

func cleanPath(p string) (string, error) {
	p = strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(p, "./")), "/")
	if strings.HasPrefix(p, "..") {
		return "", fmt.Errorf("path %q leaves the artifact", p)
	}
	return p, nil
}

func findKustomization(fs filesys.FileSystem, dir string) string {
	for _, n := range kustomizationNames {
		if p := path.Join(dir, n); fs.Exists(p) && !fs.IsDir(p) {
			return p
		}
	}
	return ""
}

// walkKustomizations calls fn with each kustomization file reachable from
// dir (its own, and those of every local directory one names), parsed.
func walkKustomizations(fs filesys.FileSystem, dir string, seen map[string]bool, fn func(kf, dir string, k map[string]any) error) error {
	if seen[dir] || len(seen) > 1000 {
		return nil
	}
	seen[dir] = true
	kf := findKustomization(fs, dir)
	if kf == "" {
		return nil
	}
	data, err := fs.ReadFile(kf)
	if err != nil {
		return err
	}
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		return &FileError{strings.TrimPrefix(kf, root+"/"), errors.New("invalid kustomization file")}
	}
	if err := fn(kf, dir, k); err != nil {
		return err
	}
	// Every local directory it names: resources, components, bases, and
	// generators, transformers or validators given as kustomizations.
	for _, r := range kustomizationPaths(k) {
		if sub := path.Join(dir, r); !strings.Contains(r, "\n") && fs.IsDir(sub) {
			if err := walkKustomizations(fs, sub, seen, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkRemote refuses remote resources (kustomize would fetch them).
func checkRemote(kf, _ string, k map[string]any) error {
	for _, r := range kustomizationPaths(k) {
		if isRemote(r) {
			return &FileError{strings.TrimPrefix(kf, root+"/"), fmt.Errorf("remote resource %q is not allowed", r)}
		}
	}
	return nil
}

// isRemote reports whether kustomize would load a path over the network:
// a URL with a scheme (kustomize fetches http and https files, and clones
// git::, ssh://, file:// and https repositories), or any path kustomize's
// own git parser takes for a repository (user@host:path, host:org/repo,
// github.com/org/repo …). kustomize (sigs.k8s.io/kustomize/api v0.21)
// offers no way to replace its cloner or HTTP client, so its parser is
// asked (resource.Origin.Append calls git.NewRepoSpecFromURL, the test
// kustomize's loader makes before cloning) instead of a list of prefixes.
// Inline documents (several lines) are not paths.
func isRemote(p string) (remote bool) {
	if strings.Contains(p, "\n") {
		return false
	}
	p = strings.TrimSpace(p)
	if strings.Contains(p, "://") {
		return true
	}
	defer func() {
		if recover() != nil {
			remote = true // kustomize's parser took it for a repository, then failed
		}
	}()
	return (&resource.Origin{}).Append(p).Repo != ""
}

// stringsOf returns the strings of a YAML list (or a lone string).
func stringsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// objectsOf returns the objects of a YAML list (or a lone object).
func objectsOf(v any) []map[string]any {
	var ms []map[string]any
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				ms = append(ms, m)
			}
		}
	case map[string]any:
		ms = append(ms, v)
	}
	return ms
}

// kustomizationPaths lists every file or directory a kustomization names:
// kustomize loads each through a loader that GETs http(s) URLs.
func kustomizationPaths(k map[string]any) []string {
	var out []string
	for _, field := range []string{"resources", "components", "bases", "crds", "configurations", "generators", "transformers", "validators", "patchesStrategicMerge"} {
		out = append(out, stringsOf(k[field])...)
	}
	for _, field := range []string{"patches", "patchesJson6902", "replacements", "openapi", "helmCharts", "helmChartInflationGenerator"} {
		for _, m := range objectsOf(k[field]) {
			for _, key := range []string{"path", "repo", "valuesFile"} {
				out = append(out, stringsOf(m[key])...)
			}
		}
	}
	for _, field := range []string{"configMapGenerator", "secretGenerator"} {
		for _, m := range objectsOf(k[field]) {
			for _, key := range []string{"files", "envs", "env"} {
				for _, f := range stringsOf(m[key]) {
					if _, after, ok := strings.Cut(f, "="); ok {
						f = after // key=path
					}
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// prepareKustomization generates a kustomization.yaml when the directory
// has none, and adds the spec's overlays.
func prepareKustomization(fs filesys.FileSystem, dir string, spec kustomizev1.KustomizationSpec) error {
	kf := findKustomization(fs, dir)
	doc := map[string]any{}
	generated := kf == ""
	if generated {
		kf = path.Join(dir, "kustomization.yaml")
		res, err := generateResources(fs, dir)
		if err != nil {
			return err
		}
		doc["apiVersion"] = "kustomize.config.k8s.io/v1beta1"
		doc["kind"] = "Kustomization"
		doc["resources"] = res
	} else {
		data, err := fs.ReadFile(kf)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return &FileError{strings.TrimPrefix(kf, root+"/"), errors.New("invalid kustomization file")}
		}
		if doc == nil {
			doc = map[string]any{}
		}
	}
	setNonEmpty(doc, "namespace", spec.TargetNamespace, "namePrefix", spec.NamePrefix, "nameSuffix", spec.NameSuffix)
	for _, p := range spec.Patches {
		entry := map[string]any{"patch": p.Patch}
		if t := p.Target; t != nil {
			entry["target"] = map[string]any{
				"group": t.Group, "version": t.Version, "kind": t.Kind, "namespace": t.Namespace, "name": t.Name,
				"annotationSelector": t.AnnotationSelector, "labelSelector": t.LabelSelector,
			}
		}
		l, _ := doc["patches"].([]any)
		doc["patches"] = append(l, entry)
	}
	for _, im := range spec.Images {
		entry := map[string]any{"name": im.Name}
		setNonEmpty(entry, "newName", im.NewName, "newTag", im.NewTag, "digest", im.Digest)
		l, _ := doc["images"].([]any)
		doc["images"] = append(l, entry)
	}
	if !generated && len(stringsOf(doc["resources"])) == 0 {
		// Flux's generator: a kustomization file of its own with no
		// resources is built with origin annotations (it sets them to avoid
		// kustomize's "kustomization.yaml is empty" error).
		doc["buildMetadata"] = []any{string(kustomizev1.BuildMetadataOriginAnnotations)}
	}
	for _, c := range spec.Components {
		if spec.IgnoreMissingComponents && !fs.Exists(path.Join(dir, c)) {
			continue // Flux: a missing component path is left out
		}
		l, _ := doc["components"].([]any)
		doc["components"] = append(l, c)
	}
	if len(spec.BuildMetadata) > 0 {
		bm := make([]any, len(spec.BuildMetadata))
		for i, o := range spec.BuildMetadata {
			bm[i] = string(o)
		}
		doc["buildMetadata"] = bm
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return fs.WriteFile(kf, out)
}

// generateResources lists what a generated kustomization.yaml holds, as
// Flux's generator does: every .yaml and .yml file below dir, each of
// which must decode as Kubernetes objects (an empty file holds none), and
// every subdirectory with its own kustomization file instead of its
// contents. A directory with neither gives an empty list.
func generateResources(fs filesys.FileSystem, dir string) ([]any, error) {
	rf := provider.NewDefaultDepProvider().GetResourceFactory()
	out := []any{}
	var walk func(d string) error
	walk = func(d string) error {
		entries, err := fs.ReadDir(d)
		if err != nil {
			return err
		}
		sort.Strings(entries)
		for _, e := range entries {
			p := path.Join(d, e)
			rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
			if fs.IsDir(p) {
				if findKustomization(fs, p) != "" {
					out = append(out, rel)
					continue
				}
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			if ext := path.Ext(e); ext != ".yaml" && ext != ".yml" {
				continue
			}
			data, err := fs.ReadFile(p)
			if err != nil {
				return err
			}
			if err := decodes(rf, data); err != nil {
				return &FileError{strings.TrimPrefix(p, root+"/"), fmt.Errorf("failed to decode Kubernetes YAML: %s", redact.Error(err))}
			}
			out = append(out, rel)
		}
		return nil
	}
	return out, walk(dir)
}

// decodes checks that data holds Kubernetes objects, as kustomize's
// resource factory reads them (which may panic on odd input).
func decodes(rf *resource.Factory, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("kustomize could not parse it")
		}
	}()
	_, err = rf.SliceFromBytes(data)
	return err
}

// setNonEmpty sets m[key] = value for each key, value pair whose value
// is not empty.
func setNonEmpty(m map[string]any, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			m[pairs[i]] = pairs[i+1]
		}
	}
}
