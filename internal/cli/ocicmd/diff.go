package ocicmd

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/ociartifact"
)

// codeDiffError is diff's exit code for errors, as lacre diff
// kustomization's (0: no diff, 1: diff).
const codeDiffError = 2

func diffCommand(a *cliapp.App) *cobra.Command {
	var rf registryFlags
	var ig ignoreFlags
	var dir string
	c := &cobra.Command{
		Use:   "artifact oci://REPO:TAG --path=DIR",
		Short: "Diff Artifact",
		Long: `The diff artifact command computes the diff between the remote OCI artifact and a local directory or file.

The local path is packaged as push artifact would (same --ignore-paths); the
remote layer is pulled, checked against its digest and unpacked in memory. The
files are compared by content, so an artifact pushed by flux with the same files
shows no changes; each file that differs is listed by name (contents are never
printed).

Exit codes, as lacre diff kustomization: 0 no differences, 1 differences, >1 error.`,
		Example: `  # Check if local files differ from remote
  lacre diff artifact oci://ghcr.io/org/manifests/podinfo:6.2.0 --path=./kustomize`,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := runDiff(cmd, a, &rf, &ig, dir, args)
			if err != nil {
				return cliapp.WithCode(codeDiffError, err)
			}
			if n > 0 {
				return &cliapp.ExitError{Code: 1, Err: errors.New("the remote artifact contents differs from the local one")}
			}
			log{a.Stderr}.successf("no changes detected")
			return nil
		},
	}
	c.Flags().StringVar(&dir, "path", "", "path to the directory where the Kubernetes manifests are located")
	rf.register(c, "pulled")
	ig.register(c)
	c.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return cliapp.Codef(codeDiffError, "%v (see %q)", err, c.CommandPath()+" --help")
	})
	return c
}

// runDiff prints the files that differ and returns how many do.
func runDiff(cmd *cobra.Command, a *cliapp.App, rf *registryFlags, ig *ignoreFlags, dir string, args []string) (int, error) {
	u, err := oneArg(args, "artifact URL")
	if err != nil {
		return 0, err
	}
	if dir == "" {
		return 0, fmt.Errorf("invalid path %q", dir)
	}
	ref, err := ociartifact.ParseArtifactURL(u, rf.insecure)
	if err != nil {
		return 0, err
	}
	fsys, err := ociartifact.SourceFS(dir)
	if err != nil {
		return 0, err
	}
	local, err := ociartifact.BuildLayer(fsys, ig.patterns(), artifact.Limits{})
	if err != nil {
		return 0, fmt.Errorf("building artifact failed: %w", err)
	}
	c, ctx, cancel, err := rf.client(cmd.Context(), a, log{a.Stderr})
	if err != nil {
		return 0, err
	}
	defer cancel()
	p, err := c.Pull(ctx, ref)
	if err != nil {
		return 0, err
	}
	if bytes.Equal(p.LayerData, local) {
		return 0, nil
	}
	remoteFiles, err := c.Files(p)
	if err != nil {
		return 0, err
	}
	localFiles, err := artifact.Extract(local, artifact.Limits{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range slices.Sorted(maps.Keys(union(localFiles, remoteFiles))) {
		l, inLocal := localFiles[name]
		r, inRemote := remoteFiles[name]
		what := ""
		switch {
		case !inRemote:
			what = "only in " + dir
		case !inLocal:
			what = "only in the artifact"
		case !bytes.Equal(l, r):
			what = "changed"
		default:
			continue
		}
		n++
		fmt.Fprintf(a.Stdout, "► %s (%s)\n", name, what)
	}
	return n, nil
}

func union(a, b artifact.Files) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func buildCommand(a *cliapp.App) *cobra.Command {
	var ig ignoreFlags
	var dir, output string
	c := &cobra.Command{
		Use:   "artifact --path=DIR [--output=artifact.tgz]",
		Short: "Build artifact",
		Long: `The build artifact command creates a tgz file with the manifests
from the given directory or a single manifest file.

The tarball is the layer push artifact uploads: reproducible (entries sorted,
owners and times zeroed, files 0600 or 0700), so the same files give the same
bytes.`,
		Example: `  # Build the given manifests directory into an artifact
  lacre build artifact --path ./path/to/local/manifests --output ./path/to/artifact.tgz

  # List the files bundled in the artifact
  tar -ztvf ./path/to/artifact.tgz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return fmt.Errorf("invalid path %q", dir)
			}
			if err := checkSymlinks(cmd); err != nil {
				return err
			}
			fsys, err := ociartifact.SourceFS(dir)
			if err != nil {
				return fmt.Errorf("invalid path '%s', must point to an existing directory or file", dir)
			}
			l := log{a.Stderr}
			l.actionf("building artifact from %s", dir)
			layer, err := ociartifact.BuildLayer(fsys, ig.patterns(), artifact.Limits{})
			if err == nil {
				err = writeAtomic(output, layer)
			}
			if err != nil {
				return fmt.Errorf("building artifact failed, error: %w", err)
			}
			l.successf("artifact created at %s", output)
			return nil
		},
	}
	c.Flags().StringVarP(&dir, "path", "p", "", "Path to the directory where the Kubernetes manifests are located.")
	c.Flags().StringVarP(&output, "output", "o", "artifact.tgz", "Path to where the artifact tgz file should be written.")
	ig.register(c)
	noSymlinks(c)
	return c
}

// writeAtomic writes data to file through a temporary file in the same
// directory, mode 0640 as flux leaves it.
func writeAtomic(file string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(file), ".lacre-artifact-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o640)
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
