package cluster

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lacre/lacre/config/crd"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/testcluster"
)

// The package's shared test helpers: running lacre in-process, and the
// local control plane with lacre's CRDs.

type cliRun struct {
	code           int
	stdout, stderr string
}

// runApp runs lacre in-process with stdin and getenv.
func runApp(ctx context.Context, stdin string, getenv func(string) string, args ...string) cliRun {
	var out, errb bytes.Buffer
	a := &cliapp.App{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: getenv}
	code := a.Run(ctx, args, full...)
	return cliRun{code, out.String(), errb.String()}
}

// runCLI runs lacre in-process with stdin and the process environment.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	r := runApp(t.Context(), stdin, os.Getenv, args...)
	return r.code, r.stdout, r.stderr
}

// runCLIEnv runs lacre in-process with no stdin and only env.
func runCLIEnv(t *testing.T, env map[string]string, args ...string) cliRun {
	t.Helper()
	return runApp(context.Background(), "", func(k string) string { return env[k] }, args...)
}

// startCluster starts a local control plane for the test (skipped when it
// is not built, unless CI or LACRE_REQUIRE_CLUSTER=1) and returns it with
// a client that knows lacre's types.
func startCluster(t *testing.T) (*testcluster.Cluster, client.Client) {
	t.Helper()
	cl, err := testcluster.Start(context.Background(), testcluster.Options{})
	if errors.Is(err, testcluster.ErrNoBinaries) && os.Getenv("CI") != "true" && os.Getenv("LACRE_REQUIRE_CLUSTER") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	cfg, err := clientcmd.BuildConfigFromFlags("", cl.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl, c
}

// installCRDs installs lacre's CRDs and waits until they are served.
func installCRDs(t *testing.T, c client.Client) {
	t.Helper()
	if err := crd.Install(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}
