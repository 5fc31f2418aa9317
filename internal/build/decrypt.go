package build

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
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

func decryptDisabled(f formats.Format, data []byte) bool {
	if f != formats.YAML {
		return false
	}
	return bytes.Contains(data, []byte(kustomizev1.DecryptAnnotation+": "+kustomizev1.DisabledValue)) ||
		bytes.Contains(data, []byte(kustomizev1.DecryptAnnotation+": Disabled"))
}

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
