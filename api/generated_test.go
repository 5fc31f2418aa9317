package api

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreFresh regenerates deep-copy functions and CRDs and
// fails when the committed files differ: run hack/generate.sh.
func TestGeneratedFilesAreFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds controller-gen")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cg := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("go", append([]string{"tool", "-modfile=hack/tools/go.mod", "controller-gen"}, args...)...)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	for _, pkg := range []string{"meta", "source/v1", "kustomize/v1"} {
		want := cg("object", "paths=./api/"+pkg, "output:object:stdout")
		got, err := os.ReadFile(filepath.Join(root, "api", pkg, "zz_generated.deepcopy.go"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			t.Errorf("api/%s/zz_generated.deepcopy.go is stale: run hack/generate.sh", pkg)
		}
	}
	tmp := t.TempDir()
	cg("crd", "paths=./api/...", "output:crd:artifacts:config="+tmp)
	entries, err := os.ReadDir(tmp)
	committed, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(entries) != len(committed) {
		t.Fatalf("expected %d CRDs, got %d (%v)", len(committed), len(entries), err)
	}
	for _, e := range entries {
		want, _ := os.ReadFile(filepath.Join(tmp, e.Name()))
		got, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("config/crd/bases/%s is stale: run hack/generate.sh", e.Name())
		}
	}
}
