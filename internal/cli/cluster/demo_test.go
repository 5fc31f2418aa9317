package cluster

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/testcluster"
)

// TestDemoWithCLI runs `lacre demo`, which creates the decryption Secret,
// the GitRepository and the Kustomization with `lacre create`.
func TestDemoWithCLI(t *testing.T) {
	if _, err := os.Stat(testcluster.DefaultBinDir() + "/kube-apiserver"); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("LACRE_REQUIRE_CLUSTER") == "1" {
			t.Fatal(err)
		}
		t.Skip("control plane not built")
	}
	// The demo starts a controller manager; controller-runtime refuses a
	// second controller of the same name in one process (the seed guide
	// test starts one too), so the demo runs in a child test process.
	if os.Getenv("LACRE_DEMO_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDemoWithCLI$", "-test.v")
		cmd.Env = append(os.Environ(), "LACRE_DEMO_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("demo test process: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestDemoWithCLI") {
			t.Fatalf("demo test process did not pass:\n%s", out)
		}
		return
	}
	var out, errb bytes.Buffer
	a := &cliapp.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: os.Getenv}
	if code := a.Run(context.Background(), []string{"demo"}, full...); code != 0 {
		t.Fatalf("demo exited %d:\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"lacre create kustomization my-secrets", "fetched revision: main@sha1:", "applied revision: main@sha1:", "password = rotated-by-the-demo", "NAME        REVISION", "Kustomization flux-system/my-secrets: main@sha1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
