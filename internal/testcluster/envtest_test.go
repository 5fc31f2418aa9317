package testcluster

import (
	"os"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestEnvtestUsesTheSameBinaries shows that controller-runtime's envtest
// runs the binaries hack/k8s/build.sh builds (KUBEBUILDER_ASSETS works too).
func TestEnvtestUsesTheSameBinaries(t *testing.T) {
	dir := DefaultBinDir()
	if _, err := os.Stat(dir + "/kube-apiserver"); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("LACRE_REQUIRE_CLUSTER") == "1" {
			t.Fatal(err)
		}
		t.Skip("control plane not built: run hack/k8s/build.sh")
	}
	env := &envtest.Environment{BinaryAssetsDirectory: dir}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	if cfg.Host == "" {
		t.Fatal("no API server address")
	}
}
