package release

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const stampPkg = "github.com/lacre/lacre/internal/cli/cliapp"

// Commands are the release's executables, built from cmd/<name>.
var Commands = []string{"lacre", "lacre-cluster"}

// ldflags strips symbols and the build ID and stamps the version, commit,
// build date and (for the archives' binaries) the image digest.
func (b *builder) ldflags(digest string) string {
	f := []string{"-s", "-w", "-buildid=",
		"-X", stampPkg + ".Version=" + b.o.Version,
		"-X", stampPkg + ".Commit=" + b.o.Commit,
		"-X", stampPkg + ".Date=" + b.o.Epoch.UTC().Format(time.RFC3339),
	}
	if digest != "" {
		f = append(f, "-X", stampPkg+".ImageDigest="+digest)
	}
	return strings.Join(f, " ")
}

// binaries builds Commands for p into a new directory and returns it.
func (b *builder) binaries(ctx context.Context, p Platform, kind, digest string) (string, error) {
	dir := filepath.Join(b.work, kind, p.OS+"_"+p.Arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, name := range Commands {
		out := filepath.Join(dir, exe(p, name))
		args := []string{"build", "-trimpath", "-buildvcs=false", "-mod=readonly",
			"-ldflags", b.ldflags(digest), "-o", out, "./cmd/" + name}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = b.o.Root
		cmd.Env = buildEnv(p)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		fmt.Fprintf(b.o.Log, "go build %s for %s\n", name, p)
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("go build %s for %s: %v\n%s", name, p, err, stderr.Bytes())
		}
	}
	return dir, nil
}

// buildEnv is the environment of go build: static, for p, with the
// architecture levels fixed and nothing from GOFLAGS.
func buildEnv(p Platform) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "CGO_ENABLED", "GOOS", "GOARCH", "GOFLAGS", "GOAMD64", "GOARM64", "GOEXPERIMENT", "GOTOOLCHAIN":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=", "GOTOOLCHAIN=local")
}

// installYAML writes what `lacre install --export` prints with the
// archives' stamped lacre-cluster: the image by digest.
func (b *builder) installYAML(ctx context.Context, hostBin string) error {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(hostBin, exe(hostPlatform(), "lacre-cluster")), "install", "--export")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.Env = []string{"HOME=" + b.work}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lacre-cluster install --export: %v\n%s", err, stderr.Bytes())
	}
	return writeFile(filepath.Join(b.o.Out, InstallFile), out.Bytes())
}

// InstallFile is the release's install manifest.
const InstallFile = "install.yaml"

// sbom writes a CycloneDX SBOM of each binary of the host's build (the
// modules are the same on every platform).
func (b *builder) sbom(ctx context.Context, hostBin string) error {
	for _, name := range Commands {
		out := filepath.Join(b.o.Out, fmt.Sprintf("%s_%s.sbom.cdx.json", name, b.o.Version))
		cmd := exec.CommandContext(ctx, b.o.SBOMTool, "bin", "-json", "-noserial", "-notimestamp", "-version", "v"+b.o.Version,
			"-output", out, filepath.Join(hostBin, exe(hostPlatform(), name)))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("cyclonedx-gomod bin %s: %v\n%s", name, err, stderr.Bytes())
		}
	}
	return nil
}
