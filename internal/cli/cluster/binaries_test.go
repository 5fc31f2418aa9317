package cluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestTwoExecutables builds lacre and lacre-cluster and checks the
// dispatch between them, and that lacre links no cluster library.
func TestTwoExecutables(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both executables")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	exe := func(name string) string {
		if runtime.GOOS == "windows" {
			return name + ".exe"
		}
		return name
	}
	both, alone := t.TempDir(), t.TempDir()
	for _, b := range []struct{ dir, pkg string }{
		{both, "github.com/lacre/lacre/cmd/lacre"},
		{both, "github.com/lacre/lacre/cmd/lacre-cluster"},
		{alone, "github.com/lacre/lacre/cmd/lacre"},
	} {
		out, err := exec.Command(goTool, "build", "-o", b.dir, b.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	empty := t.TempDir()
	type result struct {
		code           int
		stdout, stderr string
	}
	run := func(bin, path string, args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "PATH="+path, "KUBECONFIG="+filepath.Join(empty, "none"))
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		return result{code, out.String(), errb.String()}
	}
	lacre := filepath.Join(both, exe("lacre"))

	// --help lists the file and the cluster commands.
	r := run(lacre, empty, "--help")
	for _, want := range []string{"\n  create ", "\n  decrypt ", "Create sources, Kustomizations and decryption Secrets"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("lacre --help (exit %d) lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
	// A cluster command's help comes from the companion (the stub has no
	// subcommands), also through "help" and after global flags.
	for _, args := range [][]string{{"get", "--help"}, {"help", "get"}, {"--verbose", "get", "--help"}} {
		r = run(lacre, empty, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "lacre get [command]") || !strings.Contains(r.stdout, "kustomizations") {
			t.Errorf("lacre %v: exit %d, not the companion's help:\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	// Shell completion of a cluster command comes from the companion.
	r = run(lacre, empty, "__complete", "get", "")
	if !strings.Contains(r.stdout, "kustomizations") {
		t.Errorf("lacre __complete get: %s%s", r.stdout, r.stderr)
	}
	// Exit codes pass through (diff's usage errors exit 2).
	r = run(lacre, empty, "diff", "kustomization")
	if r.code != 2 || !strings.Contains(r.stderr, "accepts 1 arg") {
		t.Errorf("lacre diff kustomization: exit %d, want 2:\n%s", r.code, r.stderr)
	}
	// sops's keyservice is served by the companion, which links gRPC.
	r = run(lacre, empty, "keyservice", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--network") || !strings.Contains(r.stdout, "--prompt") {
		t.Errorf("lacre keyservice --help: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// File commands run in lacre itself.
	r = run(lacre, empty, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "lacre ") {
		t.Errorf("lacre version: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}

	// lacre alone: a clear error, naming the command, where it looked and
	// how to install the companion.
	r = run(filepath.Join(alone, exe("lacre")), empty, "create", "source", "git", "x")
	for _, want := range []string{`lacre: error: "create" is part of lacre-cluster`, "not found next to " + alone, "PATH", "go install github.com/lacre/lacre/cmd/lacre-cluster@latest"} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("lacre alone: exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
		}
	}
	// ... and the companion found in PATH.
	r = run(filepath.Join(alone, exe("lacre")), both, "get", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "lacre get [command]") {
		t.Errorf("companion in PATH: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// ... and next to the executable a symlink points to.
	if runtime.GOOS != "windows" {
		link := filepath.Join(t.TempDir(), "lacre")
		if err := os.Symlink(lacre, link); err != nil {
			t.Fatal(err)
		}
		r = run(link, empty, "get", "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "lacre get [command]") {
			t.Errorf("through a symlink: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	}

	// Cloud keys from lacre are built by the companion, which validates
	// them; without it, the error says what to install.
	plain := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(plain, []byte("a: b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(lacre, empty, "encrypt", "--kms", "arn:aws:kms:nowhere", plain)
	if want := `kms key "arn:aws:kms:nowhere": aws kms: "arn:aws:kms:nowhere" is not a KMS key or alias ARN`; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("lacre encrypt --kms (malformed): exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
	}
	r = run(filepath.Join(alone, exe("lacre")), empty, "encrypt", "--kms", "arn:aws:kms:nowhere", plain)
	if want := "aws kms keys need lacre-cluster, which was not found next to "; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("lacre encrypt --kms without the companion: exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
	}

	// lacre links no cluster library and no cloud SDK.
	out, err := exec.Command(goTool, "list", "-deps", "github.com/lacre/lacre/cmd/lacre").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"k8s.io/", "sigs.k8s.io/", "github.com/prometheus/", "github.com/go-git/",
			"github.com/lacre/lacre/internal/controller", "github.com/lacre/lacre/internal/build", "github.com/lacre/lacre/internal/artifact",
			"github.com/lacre/lacre/internal/source", "github.com/lacre/lacre/internal/demo", "github.com/lacre/lacre/internal/testcluster",
			"github.com/lacre/lacre/api/", "github.com/lacre/lacre/config/crd", "github.com/lacre/lacre/internal/cli/cluster",
			"github.com/aws/", "cloud.google.com/", "google.golang.org/grpc", "github.com/Azure/", "github.com/AzureAD/",
			"github.com/lacre/lacre/keys/awskms", "github.com/lacre/lacre/keys/gcpkms", "github.com/lacre/lacre/keys/azkv",
			"github.com/lacre/lacre/internal/cli/cloudkeys", "github.com/lacre/lacre/internal/cli/kscmd",
			"github.com/lacre/lacre/internal/keyservice/ksgrpc", "github.com/lacre/lacre/internal/keyservice/kspb",
			"github.com/google/go-containerregistry", "github.com/docker/", "github.com/lacre/lacre/internal/ociartifact",
			"github.com/lacre/lacre/internal/cli/ocicmd"} {
			if strings.HasPrefix(p, bad) {
				t.Errorf("cmd/lacre depends on %s", p)
			}
		}
	}
}
