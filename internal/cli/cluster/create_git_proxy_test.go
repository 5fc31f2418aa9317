package cluster

import (
	"strings"
	"testing"
)

func TestCreateSourceGitProxySecretRef(t *testing.T) {
	code, out, errOut := runCLI(t, "", "create", "source", "git", "app", "--url=https://example.invalid/app.git",
		"--branch=main", "--proxy-secret-ref=corp-proxy", "--export")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	if !strings.Contains(out, "proxySecretRef:\n    name: corp-proxy") {
		t.Fatalf("no proxySecretRef in:\n%s", out)
	}
}
