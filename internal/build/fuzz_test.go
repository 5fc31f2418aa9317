package build

import (
	"context"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/artifact"
)

// FuzzBuild runs kustomization discovery and the build on fuzzed file
// contents in an in-memory artifact: no panic, no escape (the file system
// holds only the artifact), and remote paths never survive the check.
func FuzzBuild(f *testing.F) {
	f.Add([]byte("resources: [cm.yaml, sub]\n"), []byte(cm), []byte("resources: [../cm.yaml]\nnamePrefix: x-\n"))
	f.Add([]byte("resources: [cm.yaml]\nconfigMapGenerator:\n  - name: g\n    literals: [a=b]\npatches:\n  - patch: |\n      - op: add\n        path: /data/x\n        value: y\n    target: {kind: ConfigMap}\n"), []byte(cm), []byte(""))
	f.Add([]byte(""), []byte(cm+"---\n"+cm), []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: YQ==}\n"))
	f.Add([]byte("resources: [.]\n"), []byte("a: &a [*a]\n"), []byte("components: [../sub]\n"))
	f.Fuzz(func(t *testing.T, kust, manifest, sub []byte) {
		files := artifact.Files{"app/cm.yaml": manifest, "app/sub/kustomization.yaml": sub, "app/sub/x.yaml": manifest}
		if len(kust) > 0 {
			files["app/kustomization.yaml"] = kust
		}
		res, err := Build(context.Background(), files, Options{Path: "app"})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error (may quote file contents): %q", err)
			}
			return
		}
		for _, o := range res.Objects {
			if o.Object == nil {
				t.Fatal("nil object")
			}
		}
	})
}
