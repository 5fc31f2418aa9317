package build

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// Decryption inside a build: whole files (by lazyFS) and SOPS payloads in a
// Secret's data, each checked for alias bombs first.

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

// decryptDisabledRe finds the annotation kustomize.toolkit.fluxcd.io/decrypt:
// disabled (any case, quoted or not) in a YAML or JSON file.
var decryptDisabledRe = regexp.MustCompile(`kustomize\.toolkit\.fluxcd\.io/decrypt["']?\s*:\s*["']?(?i:disabled)(?:["'\s,}]|$)`)

// decryptDisabled reports whether an encrypted manifest carries the
// annotation (in clear): its file is then left as it is. lacre decrypts
// files before the build (to check their MAC), so the annotation is read
// in the file, not on the built object.
func decryptDisabled(f formats.Format, data []byte) bool {
	if f != formats.YAML && f != formats.JSON {
		return false
	}
	return decryptDisabledRe.Match(data)
}

// isDecryptDisabled reports whether a built object is annotated
// kustomize.toolkit.fluxcd.io/decrypt: disabled (any case, as Flux).
func isDecryptDisabled(u *unstructured.Unstructured) bool {
	return strings.EqualFold(u.GetAnnotations()[kustomizev1.DecryptAnnotation], kustomizev1.DisabledValue)
}

// An inputRole is how a generator reads a file.
type inputRole struct {
	// format is the format a secretGenerator decrypts it in (Flux's: a
	// files entry's key name, with .dockerconfigjson as JSON; an envs
	// file's name, dotenv when that names no other format).
	format formats.Format
	// secret is set for a secretGenerator input; a file only a
	// configMapGenerator reads is never decrypted (as in Flux).
	secret bool
}

// generatorInputs are the roles of the generator inputs of a build, by
// absolute path.
type generatorInputs map[string]inputRole

// add records the generator inputs of the kustomization k of dir.
func (g generatorInputs) add(dir string, k map[string]any) {
	for _, gen := range []string{"secretGenerator", "configMapGenerator"} {
		secret := gen == "secretGenerator"
		for _, m := range objectsOf(k[gen]) {
			for _, field := range []string{"files", "envs", "env"} {
				for _, e := range stringsOf(m[field]) {
					key, p := e, e
					if a, b, ok := strings.Cut(e, "="); ok && field == "files" {
						key, p = a, b
					}
					f := formats.FormatForPath(key)
					if strings.HasSuffix(key, ".dockerconfigjson") {
						f = formats.JSON
					}
					if field != "files" && f == formats.Binary {
						f = formats.Dotenv
					}
					abs := path.Join(dir, p)
					if old, ok := g[abs]; ok && old.secret {
						continue
					}
					g[abs] = inputRole{f, secret}
				}
			}
		}
	}
}

// sniff returns the format of the file p (named n in the artifact) and
// whether it is SOPS-encrypted and to be decrypted: by its name, or as
// the secretGenerator that reads it does. configMapGenerator inputs are
// left as they are.
func (g generatorInputs) sniff(p, n string, data []byte) (formats.Format, bool) {
	role, ok := g[p]
	if !ok {
		return formats.Sniff(n, data)
	}
	if !role.secret {
		return formats.Binary, false
	}
	if f, enc := formats.Sniff("input"+formatExt[role.format], data); enc {
		return f, true
	}
	return formats.Sniff(n, data)
}

var formatExt = map[formats.Format]string{formats.YAML: ".yaml", formats.JSON: ".json", formats.Dotenv: ".env", formats.INI: ".ini"}

// decryptSecretData decrypts SOPS payloads inside a Secret's data, with
// the format taken from the key's extension (as Flux does).
func decryptSecretData(ctx context.Context, u *unstructured.Unstructured, opts Options, prov proven) (int, error) {
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
		prov.add(string(plain))
		n++
	}
	if n > 0 {
		_ = unstructured.SetNestedStringMap(u.Object, data, "data")
	}
	return n, nil
}
