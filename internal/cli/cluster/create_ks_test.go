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

// TestCreateKustomizationDependsOn: --depends-on takes flux's NAME and
// NAMESPACE/NAME, comma-separated too; a dotted name stays a name.
func TestCreateKustomizationDependsOn(t *testing.T) {
	code, out, errs := runCLI(t, "", "create", "kustomization", "apps", "--source=GitRepository/repo", "--path=./apps",
		"--depends-on=infra,other/crds", "--depends-on=a.b", "--export")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := "dependsOn:\n  - name: infra\n  - name: crds\n    namespace: other\n  - name: a.b\n"
	if !strings.Contains(out, want) {
		t.Errorf("no %q in:\n%s", want, out)
	}
	for _, bad := range []string{"/x", "ns/", "a/b/c"} {
		if code, _, errs := runCLI(t, "", "create", "kustomization", "apps", "--source=repo", "--path=./x", "--depends-on="+bad, "--export"); code == 0 || !strings.Contains(errs, "--depends-on") {
			t.Errorf("--depends-on=%s: exit %d, %s", bad, code, errs)
		}
	}
}
