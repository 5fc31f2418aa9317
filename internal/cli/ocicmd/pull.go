package ocicmd

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/ociartifact"
)

func pullCommand(a *cliapp.App) *cobra.Command {
	var rf registryFlags
	var output string
	c := &cobra.Command{
		Use:   "artifact oci://REPO:TAG --output=DIR",
		Short: "Pull artifact",
		Long: `The pull artifact command downloads and extracts the OCI artifact content to the given path.
The command can read the credentials from '~/.docker/config.json' but they can also be passed with --creds.

The layer is checked against the size and digest of the manifest before anything
is written; a tampered or truncated layer is refused. Files are written below
DIR only (never through a symbolic link out of it), each atomically, mode 0600.`,
		Example: `  # Pull an OCI artifact created by flux or lacre
  lacre pull artifact oci://ghcr.io/org/manifests/app:v0.0.1 --output ./path/to/local/manifests`,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := oneArg(args, "artifact URL")
			if err != nil {
				return err
			}
			if output == "" {
				return errors.New("output path cannot be empty")
			}
			if st, err := os.Stat(output); err != nil || !st.IsDir() {
				if err == nil {
					err = errors.New("not a directory")
				}
				return fmt.Errorf("invalid output path %q: %w", output, err)
			}
			ref, err := ociartifact.ParseArtifactURL(u, rf.insecure)
			if err != nil {
				return err
			}
			l := log{a.Stderr}
			c, ctx, cancel, err := rf.client(cmd.Context(), a, l)
			if err != nil {
				return err
			}
			defer cancel()
			l.actionf("pulling artifact from %s", trimURL(u))
			p, err := c.Pull(ctx, ref)
			if err != nil {
				return err
			}
			files, err := c.Files(p)
			if err != nil {
				return err
			}
			if err := writeTree(output, files); err != nil {
				return err
			}
			if p.Source != "" {
				l.successf("source %s", p.Source)
			}
			if p.Revision != "" {
				l.successf("revision %s", p.Revision)
			}
			l.successf("digest %s", p.Digest)
			l.successf("artifact content extracted to %s", output)
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "path where the artifact content should be extracted.")
	rf.register(c, "pulled")
	return c
}

// writeTree writes files below dir through an os.Root (no path leaves
// it, links included), each to a temporary name then renamed.
func writeTree(dir string, files artifact.Files) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if d := path.Dir(n); d != "." {
			if err := root.MkdirAll(d, 0o750); err != nil {
				return err
			}
		}
		tmp := path.Join(path.Dir(n), ".lacre-pull-"+path.Base(n))
		f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, werr := f.Write(files[n])
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = root.Rename(tmp, n)
		}
		if werr != nil {
			_ = root.Remove(tmp)
			return fmt.Errorf("writing %s: %w", n, werr)
		}
	}
	return nil
}

func tagCommand(a *cliapp.App) *cobra.Command {
	var rf registryFlags
	var tags []string
	c := &cobra.Command{
		Use:   "artifact oci://REPO:TAG --tag=NEW",
		Short: "Tag artifact",
		Long: `The tag artifact command creates tags for the given OCI artifact.
The command can read the credentials from '~/.docker/config.json' but they can also be passed with --creds.`,
		Example: `  # Tag an artifact version as latest
  lacre tag artifact oci://ghcr.io/org/manifests/app:v0.0.1 --tag latest`,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := oneArg(args, "artifact name")
			if err != nil {
				return err
			}
			if len(tags) < 1 {
				return errors.New("--tag is required")
			}
			ref, err := ociartifact.ParseArtifactURL(u, rf.insecure)
			if err != nil {
				return err
			}
			l := log{a.Stderr}
			c, ctx, cancel, err := rf.client(cmd.Context(), a, l)
			if err != nil {
				return err
			}
			defer cancel()
			l.actionf("tagging artifact")
			for _, t := range tags {
				img, err := c.Tag(ctx, ref, t)
				if err != nil {
					return fmt.Errorf("tagging artifact failed: %w", err)
				}
				l.successf("artifact tagged as %s", img)
			}
			return nil
		},
	}
	c.Flags().StringSliceVar(&tags, "tag", nil, "tag name")
	rf.register(c, "tagged")
	return c
}

func listCommand(a *cliapp.App) *cobra.Command {
	var rf registryFlags
	var o ociartifact.ListOptions
	c := &cobra.Command{
		Use:   "artifacts oci://REPO",
		Short: "list artifacts",
		Long: `The list command fetches the tags and their metadata from a remote OCI repository.
The command can read the credentials from '~/.docker/config.json' but they can also be passed with --creds.

Tags are listed in descending order; cosign's .sig, .att and .sbom tags are left
out. --filter-semver keeps the tags that parse as a version as Flux parses them
(three parts, an optional v prefix) and fall in the range.`,
		Example: `  # List the artifacts stored in an OCI repository
  lacre list artifacts oci://ghcr.io/org/config/app
  lacre list artifacts oci://ghcr.io/org/config/app --filter-semver '>=1.0.0 <2.0.0'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := oneArg(args, "artifact repository URL")
			if err != nil {
				return err
			}
			repo, err := ociartifact.ParseRepositoryURL(u, rf.insecure)
			if err != nil {
				return err
			}
			c, ctx, cancel, err := rf.client(cmd.Context(), a, log{a.Stderr})
			if err != nil {
				return err
			}
			defer cancel()
			metas, err := c.List(ctx, repo, o)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ARTIFACT\tDIGEST\tSOURCE\tREVISION")
			for _, m := range metas {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", m.URL, m.Digest, m.Source, m.Revision)
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&o.SemverFilter, "filter-semver", "", "filter tags returned from the oci repository using semver")
	c.Flags().StringVar(&o.RegexFilter, "filter-regex", "", "filter tags returned from the oci repository using regex")
	rf.register(c, "listed")
	return c
}
