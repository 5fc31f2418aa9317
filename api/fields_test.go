package api

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lacre/lacre/config/crd"
)

// pendingOtherBranch are Flux field paths added by branches being merged
// in parallel (CEL health checks, the GitRepository fields). The lead
// empties this list at merge; a path listed here that lacre's CRD already
// has fails the test, so the list cannot go stale.
var pendingOtherBranch = map[string]bool{}

// FluxFieldPaths reads testdata/flux-<kind>-v1-fields.txt.
func fluxFieldPaths(t *testing.T, kind string) []string {
	t.Helper()
	f, err := os.Open("testdata/flux-" + kind + "-v1-fields.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// schemaOf returns the v1 openAPIV3Schema of the CRD of plural.
func schemaOf(t *testing.T, plural string) map[string]any {
	t.Helper()
	objs, err := crd.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if p, _, _ := unstructured.NestedString(o.Object, "spec", "names", "plural"); p != plural {
			continue
		}
		vs, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range vs {
			vm := v.(map[string]any)
			if vm["name"] == "v1" {
				s, _, _ := unstructured.NestedMap(vm, "schema", "openAPIV3Schema")
				return s
			}
		}
	}
	t.Fatalf("no v1 CRD for %s", plural)
	return nil
}

// hasPath walks path (dot-separated, `[]` for list items) in schema.
func hasPath(schema map[string]any, path string) bool {
	cur := schema
	for _, part := range strings.Split(path, ".") {
		list := strings.HasSuffix(part, "[]")
		props, _ := cur["properties"].(map[string]any)
		next, ok := props[strings.TrimSuffix(part, "[]")].(map[string]any)
		if !ok {
			return false
		}
		if list {
			if next, ok = next["items"].(map[string]any); !ok {
				return false
			}
		}
		cur = next
	}
	return true
}

// TestFluxFieldsInCRDs asserts each field path of Flux's v1 Kustomization
// GitRepository and Bucket schemas is in lacre's CRD schema, except the ones a
// parallel branch adds (pendingOtherBranch).
func TestFluxFieldsInCRDs(t *testing.T) {
	for _, c := range []struct{ kind, plural string }{
		{"kustomization", "kustomizations"},
		{"gitrepository", "gitrepositories"},
		{"ocirepository", "ocirepositories"},
		{"bucket", "buckets"},
	} {
		schema := schemaOf(t, c.plural)
		for _, p := range fluxFieldPaths(t, c.kind) {
			key := c.kind + " " + p
			switch has := hasPath(schema, p); {
			case has && pendingOtherBranch[key]:
				t.Errorf("%s: in the CRD, remove it from pendingOtherBranch", key)
			case !has && !pendingOtherBranch[key]:
				t.Errorf("%s: Flux's field is missing from lacre's CRD", key)
			}
		}
	}
}
