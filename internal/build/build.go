// Package build turns a source artifact into Kubernetes objects: it
// decrypts SOPS-encrypted files, runs kustomize, and applies the
// Kustomization's overlays. Everything happens on an in-memory file
// system: decrypted secrets never touch the disk. The controller and the
// CLI's build and diff commands share it.
package build

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/kubesecret"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// MaxEncryptedFileSize bounds each encrypted file (Flux: 5 MiB).
const MaxEncryptedFileSize = 5 << 20

const root = "/src"

var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Options describe one build.
type Options struct {
	// Path is the directory in the artifact ("" or "./" for the root).
	Path string
	// Spec supplies targetNamespace, namePrefix, nameSuffix, patches,
	// images, components and commonMetadata.
	Spec kustomizev1.KustomizationSpec
	// Decrypt enables SOPS decryption with Identities.
	Decrypt         bool
	Identities      []keys.Identity
	DecryptionOrder []string
	// RequireEncryptedSecrets refuses Secret manifests stored in Git without
	// SOPS encryption.
	RequireEncryptedSecrets bool
	// Dirs, when set, are the artifact's directories (artifact.Dirs), so
	// a build does not compute them again.
	Dirs map[string]bool
	// KeepEncrypted returns objects that still hold SOPS metadata as they
	// are instead of refusing them (for the CLI's build and diff without
	// decryption). The controller never sets it.
	KeepEncrypted bool
}

// ErrPlaintextSecret is returned, with RequireEncryptedSecrets, for a
// Secret committed in plain text.
var ErrPlaintextSecret = errors.New("holds a Kubernetes Secret that is not SOPS-encrypted")

// A FileError names the file a build step failed on.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// ErrEncryptedNotDecrypted is returned when an object still holds SOPS
// metadata after the build and decryption was not configured.
var ErrEncryptedNotDecrypted = errors.New("is SOPS encrypted, configuring decryption is required")

// Result is a build's output.
type Result struct {
	Objects []*unstructured.Unstructured
	// Decrypted counts files and values decrypted.
	Decrypted int
}

// Build builds the objects of an artifact.
//
// Files are copied into the build's in-memory file system, checked and,
// when encrypted, decrypted the first time the build reads them, not up
// front: a Kustomization pays only for the files its path uses, not for
// every file of a repository shared by many Kustomizations.
func Build(ctx context.Context, files artifact.Files, opts Options) (*Result, error) {
	res := &Result{}
	if opts.RequireEncryptedSecrets {
		// Every file, read or not: a plain Secret anywhere is refused.
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			data := files[n]
			if _, enc := formats.Sniff(n, data); !enc && kubesecret.Plain(n, data) {
				return nil, &FileError{n, ErrPlaintextSecret}
			}
		}
	}
	dfs := &lazyFS{FileSystem: filesys.MakeFsInMemory(), files: files, ctx: ctx, opts: opts, res: res, done: map[string]bool{}}
	var fs filesys.FileSystem = dfs
	dir, err := cleanPath(opts.Path)
	if err != nil {
		return nil, err
	}
	dir = path.Join(root, dir)
	if !fs.IsDir(dir) {
		return nil, fmt.Errorf("path %q not found in the artifact", opts.Path)
	}
	if err := checkRemote(fs, dir, map[string]bool{}); err != nil {
		return nil, dfs.firstErr(err)
	}
	if err := prepareKustomization(fs, dir, opts.Spec); err != nil {
		return nil, dfs.firstErr(err)
	}
	ko := krusty.MakeDefaultOptions()
	ko.LoadRestrictions = kustypes.LoadRestrictionsNone // the file system holds only the artifact
	rm, err := krusty.MakeKustomizer(ko).Run(fs, dir)
	if err != nil {
		if dfs.err != nil {
			return nil, dfs.err
		}
		return nil, fmt.Errorf("kustomize build failed: %w", scrub(err))
	}
	for _, r := range rm.Resources() {
		// Through JSON, so numbers are int64 as Kubernetes clients expect.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("built object is invalid: %v", err)
		}
		m := u.Object
		if _, ok := m["sops"]; ok && !opts.KeepEncrypted {
			return nil, fmt.Errorf("%s/%s/%s %w", u.GetKind(), u.GetNamespace(), u.GetName(), ErrEncryptedNotDecrypted)
		}
		if opts.Decrypt && u.GetKind() == "Secret" && u.GetAPIVersion() == "v1" && u.GetAnnotations()[kustomizev1.DecryptAnnotation] != kustomizev1.DisabledValue {
			n, err := decryptSecretData(ctx, u, opts)
			if err != nil {
				return nil, err
			}
			res.Decrypted += n
		}
		applyCommonMetadata(u, opts.Spec.CommonMetadata)
		res.Objects = append(res.Objects, u)
	}
	return res, nil
}

// lazyFS is the build's file system: an in-memory file system that a
// file of the artifact enters (checked for alias bombs and, when
// encrypted, decrypted) the first time the build looks at it. Builds are
// sequential (kustomize reads files one at a time).
type lazyFS struct {
	filesys.FileSystem
	files artifact.Files // relative names
	ctx   context.Context
	opts  Options
	res   *Result
	dirs  map[string]bool // the artifact's directories (relative), from Options.Dirs or built on first use
	done  map[string]bool // absolute paths loaded or written
	err   error           // the first check or decryption error
}

func (l *lazyFS) firstErr(err error) error {
	if l.err != nil {
		return l.err
	}
	return err
}

func (l *lazyFS) fail(err error) error {
	if l.err == nil {
		l.err = err
	}
	return err
}

func (l *lazyFS) isDir(p string) bool {
	if l.dirs == nil {
		l.dirs = l.opts.Dirs
		if l.dirs == nil {
			l.dirs = artifact.Dirs(l.files)
		}
	}
	if p == root {
		return true
	}
	n, ok := rel(p)
	return ok && l.dirs[n]
}

// rel returns p's name in the artifact, if it is below root.
func rel(p string) (string, bool) {
	if !strings.HasPrefix(p, root+"/") {
		return "", false
	}
	return p[len(root)+1:], true
}

// load copies the artifact's file at p (absolute, clean) into the file
// system, once: checked, and decrypted when encrypted and decryption is on.
func (l *lazyFS) load(p string) error {
	if l.done[p] {
		return nil
	}
	n, ok := rel(p)
	if !ok {
		return nil
	}
	data, ok := l.files[n]
	if !ok {
		return nil
	}
	l.done[p] = true
	if err := checkAliases(n, data); err != nil {
		return l.fail(&FileError{n, err})
	}
	// Encrypted files are left as they are without decryption: encrypted
	// manifests are refused after the build, generator inputs stay
	// ciphertext (as in Flux).
	if f, enc := formats.Sniff(n, data); enc && l.opts.Decrypt && !decryptDisabled(f, data) {
		if len(data) > MaxEncryptedFileSize {
			return l.fail(&FileError{n, fmt.Errorf("encrypted file is larger than %d MiB", MaxEncryptedFileSize>>20)})
		}
		plain, err := sopsfile.Decrypt(l.ctx, data, sopsfile.DecryptOptions{
			InputFormat: f, OutputFormat: f, Identities: l.opts.Identities, DecryptionOrder: l.opts.DecryptionOrder,
		})
		if err != nil {
			return l.fail(&FileError{n, err})
		}
		data = plain
		l.res.Decrypted++
	}
	return l.FileSystem.WriteFile(p, data)
}

// loadDir loads the files below the directory p (all levels when deep,
// else its own files) and creates its subdirectories.
func (l *lazyFS) loadDir(p string, deep bool) error {
	if !l.isDir(p) {
		return nil
	}
	if err := l.FileSystem.MkdirAll(p); err != nil {
		return err
	}
	prefix := ""
	if p != root {
		prefix, _ = rel(p)
		prefix += "/"
	}
	for n := range l.files {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		rest := n[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 && !deep {
			if err := l.FileSystem.MkdirAll(path.Join(p, rest[:i])); err != nil {
				return err
			}
			continue
		}
		if err := l.load(path.Join(root, n)); err != nil {
			return err
		}
	}
	return nil
}

// prepare makes p present in the file system, if the artifact has it.
func (l *lazyFS) prepare(p string) (string, error) {
	p = path.Clean(p)
	if l.isDir(p) {
		return p, l.FileSystem.MkdirAll(p)
	}
	return p, l.load(p)
}

func (l *lazyFS) Open(p string) (filesys.File, error) {
	p, err := l.prepare(p)
	if err != nil {
		return nil, err
	}
	return l.FileSystem.Open(p)
}

func (l *lazyFS) ReadFile(p string) ([]byte, error) {
	p, err := l.prepare(p)
	if err != nil {
		return nil, err
	}
	return l.FileSystem.ReadFile(p)
}

func (l *lazyFS) IsDir(p string) bool {
	return l.isDir(path.Clean(p)) || l.FileSystem.IsDir(p)
}

func (l *lazyFS) Exists(p string) bool {
	c := path.Clean(p)
	if l.isDir(c) {
		return true
	}
	if n, ok := rel(c); ok {
		if _, ok := l.files[n]; ok {
			return true
		}
	}
	return l.FileSystem.Exists(p)
}

func (l *lazyFS) ReadDir(p string) ([]string, error) {
	if err := l.loadDir(path.Clean(p), false); err != nil {
		return nil, err
	}
	return l.FileSystem.ReadDir(p)
}

func (l *lazyFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if _, err := l.prepare(p); err != nil {
		return "", "", err
	}
	return l.FileSystem.CleanedAbs(p)
}

func (l *lazyFS) Glob(pattern string) ([]string, error) {
	if err := l.loadDir(root, true); err != nil {
		return nil, err
	}
	return l.FileSystem.Glob(pattern)
}

func (l *lazyFS) Walk(p string, fn filepath.WalkFunc) error {
	if err := l.loadDir(path.Clean(p), true); err != nil {
		return err
	}
	return l.FileSystem.Walk(p, fn)
}

func (l *lazyFS) RemoveAll(p string) error {
	if err := l.loadDir(path.Clean(p), true); err != nil {
		return err
	}
	l.done[path.Clean(p)] = true
	return l.FileSystem.RemoveAll(p)
}

// Writes replace the artifact's file, which is then never loaded.
func (l *lazyFS) WriteFile(p string, data []byte) error {
	c := path.Clean(p)
	l.done[c] = true
	if err := l.FileSystem.MkdirAll(path.Dir(c)); err != nil {
		return err
	}
	return l.FileSystem.WriteFile(p, data)
}

func (l *lazyFS) Create(p string) (filesys.File, error) {
	c := path.Clean(p)
	l.done[c] = true
	if err := l.FileSystem.MkdirAll(path.Dir(c)); err != nil {
		return nil, err
	}
	return l.FileSystem.Create(p)
}

// ErrAliasBomb is returned for a YAML file whose aliases expand beyond
// reason (a "billion laughs" document).
var ErrAliasBomb = errors.New("YAML aliases expand too far")

// checkAliases refuses YAML files whose aliases would expand without
// bound: kustomize's YAML reader expands them for minutes, the SOPS store
// up to its node limit. The YAML decoder used here stops such a document
// early (excessive aliasing).
func checkAliases(name string, data []byte) error {
	ext := strings.ToLower(path.Ext(name))
	if ext != ".yaml" && ext != ".yml" && path.Base(name) != "Kustomization" {
		return nil
	}
	if bytes.IndexByte(data, '&') < 0 || bytes.IndexByte(data, '*') < 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var v any
		err := dec.Decode(&v)
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), "excessive aliasing") {
			return ErrAliasBomb
		}
		return nil // other errors are reported by the step that reads the file
	}
}

// scrub keeps kustomize's errors from quoting file contents, which may be
// decrypted secrets: only the first line, without YAML snippets.
func scrub(err error) error {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return errors.New(msg)
}

func decryptDisabled(f formats.Format, data []byte) bool {
	if f != formats.YAML {
		return false
	}
	return bytes.Contains(data, []byte(kustomizev1.DecryptAnnotation+": "+kustomizev1.DisabledValue)) ||
		bytes.Contains(data, []byte(kustomizev1.DecryptAnnotation+": Disabled"))
}

// decryptSecretData decrypts SOPS payloads inside a Secret's data, with
// the format taken from the key's extension (as Flux does).
func decryptSecretData(ctx context.Context, u *unstructured.Unstructured, opts Options) (int, error) {
	data, ok, _ := unstructured.NestedStringMap(u.Object, "data")
	if !ok {
		return 0, nil
	}
	n := 0
	for k, v := range data {
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			continue
		}
		f, enc := formats.Sniff(k, raw)
		if !enc {
			continue
		}
		if strings.HasSuffix(k, ".dockerconfigjson") {
			f = formats.JSON
		}
		if err := checkAliases(k, raw); err != nil {
			return n, fmt.Errorf("Secret %s/%s key %q: %w", u.GetNamespace(), u.GetName(), k, err)
		}
		plain, err := sopsfile.Decrypt(ctx, raw, sopsfile.DecryptOptions{InputFormat: f, OutputFormat: f, Identities: opts.Identities, DecryptionOrder: opts.DecryptionOrder})
		if err != nil {
			return n, fmt.Errorf("Secret %s/%s key %q: %w", u.GetNamespace(), u.GetName(), k, err)
		}
		data[k] = base64.StdEncoding.EncodeToString(plain)
		n++
	}
	if n > 0 {
		_ = unstructured.SetNestedStringMap(u.Object, data, "data")
	}
	return n, nil
}

func applyCommonMetadata(u *unstructured.Unstructured, cm *kustomizev1.CommonMetadata) {
	if cm == nil {
		return
	}
	if len(cm.Labels) > 0 {
		l := u.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		for k, v := range cm.Labels {
			l[k] = v
		}
		u.SetLabels(l)
	}
	if len(cm.Annotations) > 0 {
		a := u.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		for k, v := range cm.Annotations {
			a[k] = v
		}
		u.SetAnnotations(a)
	}
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

// checkRemote refuses remote resources (kustomize would fetch them).
func checkRemote(fs filesys.FileSystem, dir string, seen map[string]bool) error {
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
	for _, r := range kustomizationPaths(k) {
		if isRemote(r) {
			return &FileError{strings.TrimPrefix(kf, root+"/"), fmt.Errorf("remote resource %q is not allowed", r)}
		}
	}
	for _, field := range []string{"resources", "components", "bases"} {
		for _, r := range stringsOf(k[field]) {
			sub := path.Join(dir, r)
			if fs.IsDir(sub) {
				if err := checkRemote(fs, sub, seen); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isRemote reports whether kustomize would fetch a path over the network
// (an http(s) URL, or a git repository it would clone). Inline documents
// (several lines) are not paths.
func isRemote(p string) bool {
	if strings.Contains(p, "\n") {
		return false
	}
	p = strings.TrimSpace(p)
	return strings.Contains(p, "://") || strings.HasPrefix(p, "github.com/") || strings.HasPrefix(p, "git@") ||
		strings.HasPrefix(p, "git::") || strings.HasPrefix(p, "gh:")
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

// kustomizationPaths lists every file or directory a kustomization names:
// kustomize loads each through a loader that GETs http(s) URLs.
func kustomizationPaths(k map[string]any) []string {
	var out []string
	for _, field := range []string{"resources", "components", "bases", "crds", "configurations", "generators", "transformers", "validators", "patchesStrategicMerge"} {
		out = append(out, stringsOf(k[field])...)
	}
	objects := func(field string) []map[string]any {
		var ms []map[string]any
		switch v := k[field].(type) {
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
	for _, field := range []string{"patches", "patchesJson6902", "replacements", "openapi", "helmCharts", "helmChartInflationGenerator"} {
		for _, m := range objects(field) {
			for _, key := range []string{"path", "repo", "valuesFile"} {
				out = append(out, stringsOf(m[key])...)
			}
		}
	}
	for _, field := range []string{"configMapGenerator", "secretGenerator"} {
		for _, m := range objects(field) {
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
	if kf == "" {
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
	if spec.TargetNamespace != "" {
		doc["namespace"] = spec.TargetNamespace
	}
	if spec.NamePrefix != "" {
		doc["namePrefix"] = spec.NamePrefix
	}
	if spec.NameSuffix != "" {
		doc["nameSuffix"] = spec.NameSuffix
	}
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
		if im.NewName != "" {
			entry["newName"] = im.NewName
		}
		if im.NewTag != "" {
			entry["newTag"] = im.NewTag
		}
		if im.Digest != "" {
			entry["digest"] = im.Digest
		}
		l, _ := doc["images"].([]any)
		doc["images"] = append(l, entry)
	}
	for _, c := range spec.Components {
		l, _ := doc["components"].([]any)
		doc["components"] = append(l, c)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return fs.WriteFile(kf, out)
}

// generateResources lists the manifests below dir: YAML and JSON files
// that hold Kubernetes objects, and subdirectories with their own
// kustomization file.
func generateResources(fs filesys.FileSystem, dir string) ([]any, error) {
	var out []any
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
			ext := strings.ToLower(path.Ext(e))
			if ext != ".yaml" && ext != ".yml" && ext != ".json" {
				continue
			}
			data, err := fs.ReadFile(p)
			if err != nil {
				return err
			}
			if isManifest(data) {
				out = append(out, rel)
			}
		}
		return nil
	}
	return out, walk(dir)
}

func isManifest(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return false
		}
		if m["apiVersion"] != nil && m["kind"] != nil {
			return true
		}
	}
}

var _ = sops.MetadataKey
