// Package ocicmd implements flux's artifact commands for lacre-cluster:
// push, pull, tag, list, build and diff of Flux OCI artifacts
// (internal/ociartifact). They link go-containerregistry, so lacre runs
// them through its companion.
package ocicmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/ociartifact"
)

// Commands returns the top-level push, pull, tag and list commands.
func Commands(a *cliapp.App) []*cobra.Command {
	return []*cobra.Command{
		group("push", "Push an OCI artifact to a container registry", pushCommand(a)),
		group("pull", "Pull an OCI artifact from a container registry", pullCommand(a)),
		group("tag", "Tag an OCI artifact in its container registry", tagCommand(a)),
		group("list", "List the OCI artifacts of a container registry repository", listCommand(a)),
	}
}

// BuildArtifactCommand is "build artifact", DiffArtifactCommand "diff
// artifact"; package cluster adds them under its build and diff.
func BuildArtifactCommand(a *cliapp.App) *cobra.Command { return buildCommand(a) }

// DiffArtifactCommand: see BuildArtifactCommand.
func DiffArtifactCommand(a *cliapp.App) *cobra.Command { return diffCommand(a) }

func group(use, short string, sub *cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short}
	c.AddCommand(sub)
	return c
}

// log prints flux's progress lines to stderr.
type log struct{ w io.Writer }

func (l log) actionf(format string, args ...any) {
	fmt.Fprintln(l.w, "►", fmt.Sprintf(format, args...))
}

func (l log) successf(format string, args ...any) {
	fmt.Fprintln(l.w, "✔", fmt.Sprintf(format, args...))
}

// registryFlags are the flags every command that reaches a registry has.
type registryFlags struct {
	creds    string
	provider string
	insecure bool
	timeout  time.Duration
}

func (rf *registryFlags) register(c *cobra.Command, verb string) {
	f := c.Flags()
	f.StringVar(&rf.creds, "creds", "", "credentials for OCI registry in the format <username>[:<password>] if --provider is generic")
	f.StringVar(&rf.provider, "provider", "generic", "the OCI provider name; only generic is supported (credentials from --creds or ~/.docker/config.json)")
	f.BoolVar(&rf.insecure, "insecure-registry", false, "allows artifacts to be "+verb+" without TLS")
	f.DurationVar(&rf.timeout, "timeout", 5*time.Minute, "timeout for this operation")
}

// client returns the registry client and a context bounded by --timeout.
// Credentials: --creds, else the docker config.json in $DOCKER_CONFIG or
// ~/.docker, as flux reads them.
func (rf *registryFlags) client(ctx context.Context, a *cliapp.App, l log) (*ociartifact.Client, context.Context, context.CancelFunc, error) {
	if rf.provider != "generic" {
		return nil, nil, nil, fmt.Errorf("--provider %q is not supported by lacre: use generic with --creds or docker login", rf.provider)
	}
	o := ociartifact.Options{Insecure: rf.insecure, UserAgent: "lacre/" + cliapp.Version}
	if rf.creds != "" {
		l.actionf("logging in to registry with credentials")
		auth, err := ociartifact.Credentials(rf.creds)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("could not login with credentials: %w", err)
		}
		o.Auth = auth
	} else {
		kc, err := ociartifact.DockerConfig(dockerConfigDir(a))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("docker config: %w", err)
		}
		o.Keychain = kc
	}
	if rf.timeout <= 0 {
		rf.timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, rf.timeout)
	return ociartifact.New(o), ctx, cancel, nil
}

func dockerConfigDir(a *cliapp.App) string {
	if d := a.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home := a.Getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".docker")
}

// ignoreFlags are --ignore-paths and --add-ignore-paths.
type ignoreFlags struct{ paths, add []string }

func (f *ignoreFlags) register(c *cobra.Command) {
	c.Flags().StringSliceVar(&f.paths, "ignore-paths", ociartifact.DefaultIgnorePaths, "set paths to ignore in .gitignore format")
	c.Flags().StringSliceVar(&f.add, "add-ignore-paths", nil, "additional paths to ignore in .gitignore format (appended to --ignore-paths)")
}

func (f *ignoreFlags) patterns() []string {
	return append(append([]string{}, f.paths...), f.add...)
}

// noSymlinks refuses flux's --resolve-symlinks, which lacre lacks.
func noSymlinks(c *cobra.Command) {
	c.Flags().Bool("resolve-symlinks", false, "not supported by lacre (symlinks are never archived)")
}

func checkSymlinks(c *cobra.Command) error {
	if v, _ := c.Flags().GetBool("resolve-symlinks"); v {
		return fmt.Errorf("--resolve-symlinks is not supported by lacre: copy the link targets into the directory first")
	}
	return nil
}

// oneArg reads the URL argument with flux's message when it is missing.
func oneArg(args []string, what string) (string, error) {
	if len(args) < 1 {
		return "", fmt.Errorf("%s is required", what)
	}
	if len(args) > 1 {
		return "", fmt.Errorf("accepts 1 argument (%s), received %d", what, len(args))
	}
	return args[0], nil
}

// trimURL is the URL without oci://, as flux prints it.
func trimURL(u string) string { return strings.TrimPrefix(u, ociartifact.URLPrefix) }
