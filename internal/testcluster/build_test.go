package testcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildScriptCacheHit runs hack/k8s/build.sh on the built control
// plane: it says both binaries are cached and prints the directory last.
func TestBuildScriptCacheHit(t *testing.T) {
	dir := DefaultBinDir()
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Skip("control plane not built")
	}
	cmd := exec.Command("bash", "../../hack/k8s/build.sh")
	cmd.Env = append(os.Environ(), "LACRE_K8S_DIR="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(string(out)); got != dir {
		t.Errorf("build.sh printed %q, want %q", got, dir)
	}
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if want := "lacre-k8s: " + bin + " is cached in " + dir + " (cache hit: nothing to build)"; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "building") {
		t.Errorf("a cache hit builds nothing:\n%s", stderr.String())
	}
}
