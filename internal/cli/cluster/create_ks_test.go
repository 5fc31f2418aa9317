package cluster

import (
	"strings"
	"testing"
)

// TestCreateKustomizationRemoteFlags: flux's --kubeconfig-secret-ref and
// --retry-interval set spec.kubeConfig.secretRef and spec.retryInterval.
func TestCreateKustomizationRemoteFlags(t *testing.T) {
	code, out, errs := runCLI(t, "", "create", "kustomization", "apps", "--source=GitRepository/repo", "--path=./apps",
		"--kubeconfig-secret-ref=prod-kubeconfig", "--retry-interval=2m", "--export")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"kubeConfig:\n    secretRef:\n      name: prod-kubeconfig\n", "retryInterval: 2m0s\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
