package ocicmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/logs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/kubesecret"
	"github.com/lacre/lacre/internal/ociartifact"
)

// stdinName is the name of the file --path=- archives.
const stdinName = "stdin.yaml"

type pushFlags struct {
	rf           registryFlags
	ig           ignoreFlags
	path         string
	source       string
	revision     string
	annotations  []string
	output       string
	debug        bool
	reproducible bool
	requireEnc   bool
}

func pushCommand(a *cliapp.App) *cobra.Command {
	var pf pushFlags
	c := &cobra.Command{
		Use:   "artifact oci://REPO:TAG --path=DIR --source=URL --revision=REV",
		Short: "Push artifact",
		Long: `The push artifact command creates a tarball from the given directory or the single file and uploads the artifact to an OCI repository.
The command can read the credentials from '~/.docker/config.json' but they can also be passed with --creds.

The artifact is Flux's: the config and layer media types and the
org.opencontainers.image.source, .revision and .created annotations of flux push
artifact, so Flux's and lacre's OCIRepository both read it. The tarball is
lacre's reproducible one (entries sorted, owners and times zeroed, files 0600 or
0700): the same files give the same layer digest whatever the umask.

--require-encrypted-secrets refuses to push when a file holds a Kubernetes Secret
that is not SOPS-encrypted, with the rule of lacre check secrets.`,
		Example: `  # Push manifests, the short Git SHA as the tag
  lacre push artifact oci://ghcr.io/org/config/app:$(git rev-parse --short HEAD) \
    --path=./clusters/cluster0 \
    --source="$(git config --get remote.origin.url)" \
    --revision="$(git branch --show-current)@sha1:$(git rev-parse HEAD)" \
    --require-encrypted-secrets

  # Print the digest as JSON (for cosign sign)
  lacre push artifact oci://ghcr.io/org/config/app:v1.0.0 --path=./deploy \
    --source=https://github.com/org/config --revision=v1.0.0@sha1:$(git rev-parse HEAD) --output json`,
		RunE: func(cmd *cobra.Command, args []string) error { return runPush(cmd, a, &pf, args) },
	}
	f := c.Flags()
	f.StringVarP(&pf.path, "path", "f", "", "path to the directory where the Kubernetes manifests are located (or a single file, or - for stdin)")
	f.StringVar(&pf.source, "source", "", "the source address, e.g. the Git URL")
	f.StringVar(&pf.revision, "revision", "", "the source revision in the format '<branch|tag>@sha1:<commit-sha>'")
	f.StringArrayVarP(&pf.annotations, "annotations", "a", nil, "Set custom OCI annotations in the format '<key>=<value>'")
	f.StringVarP(&pf.output, "output", "o", "", "the format in which the artifact digest should be printed, can be 'json' or 'yaml'")
	f.BoolVar(&pf.debug, "debug", false, "display logs from underlying library")
	f.BoolVar(&pf.reproducible, "reproducible", false, "ensure reproducible image digests by setting the created timestamp to '1970-01-01T00:00:00Z'")
	f.BoolVar(&pf.requireEnc, "require-encrypted-secrets", false, "refuse to push a Kubernetes Secret that is not SOPS-encrypted (the rule of lacre check secrets)")
	pf.rf.register(c, "pushed")
	pf.ig.register(c)
	noSymlinks(c)
	return c
}

// pushInfo is what --output prints, as flux does.
type pushInfo struct {
	URL        string `json:"url"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
}

func runPush(cmd *cobra.Command, a *cliapp.App, pf *pushFlags, args []string) error {
	u, err := oneArg(args, "artifact URL")
	if err != nil {
		return err
	}
	switch {
	case pf.source == "":
		return errors.New("--source is required")
	case pf.revision == "":
		return errors.New("--revision is required")
	case pf.path == "":
		return fmt.Errorf("invalid path %q", pf.path)
	case pf.output != "" && pf.output != "json" && pf.output != "yaml":
		return fmt.Errorf("--output %q: want json or yaml", pf.output)
	}
	if err := checkSymlinks(cmd); err != nil {
		return err
	}
	ref, err := ociartifact.ParseArtifactURL(u, pf.rf.insecure)
	if err != nil {
		return err
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return fmt.Errorf("artifact tag parsing failed: %q names a digest; push needs a tag", u)
	}
	meta, err := pf.metadata()
	if err != nil {
		return err
	}
	layer, err := pf.layer(a)
	if err != nil {
		return err
	}
	img, err := ociartifact.Image(layer, meta)
	if err != nil {
		return err
	}
	l := log{a.Stderr}
	if pf.debug {
		logs.Warn.SetOutput(a.Stderr)
	}
	c, ctx, cancel, err := pf.rf.client(cmd.Context(), a, l)
	if err != nil {
		return err
	}
	defer cancel()
	if pf.output == "" {
		l.actionf("pushing artifact to %s", trimURL(u))
	}
	digestRef, err := c.Push(ctx, tag, img)
	if err != nil {
		return err
	}
	d, err := name.NewDigest(digestRef)
	if err != nil {
		return fmt.Errorf("artifact digest parsing failed: %w", err)
	}
	info := pushInfo{URL: ociartifact.URLPrefix + digestRef, Repository: d.Context().Name(), Tag: tag.TagStr(), Digest: d.DigestStr()}
	return printPush(a, l, pf.output, digestRef, info)
}

func printPush(a *cliapp.App, l log, output, digestRef string, info pushInfo) error {
	switch output {
	case "json":
		b, err := json.MarshalIndent(&info, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(a.Stdout, string(b))
	case "yaml":
		b, err := yaml.Marshal(&info)
		if err != nil {
			return err
		}
		a.Stdout.Write(b)
	default:
		l.successf("artifact successfully pushed to %s", digestRef)
	}
	return nil
}

// metadata is the artifact's source, revision, created time and custom
// annotations.
func (pf *pushFlags) metadata() (ociartifact.Metadata, error) {
	meta := ociartifact.Metadata{Source: pf.source, Revision: pf.revision, Annotations: map[string]string{}}
	for _, kv := range pf.annotations {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return meta, fmt.Errorf("invalid annotation %s, must be in the format key=value", kv)
		}
		meta.Annotations[k] = v
	}
	if pf.reproducible {
		meta.Created = time.Unix(0, 0).UTC().Format(time.RFC3339)
	}
	return meta, nil
}

// layer builds the tar.gz of --path and, with --require-encrypted-secrets,
// refuses it when a file holds a plain Secret.
func (pf *pushFlags) layer(a *cliapp.App) ([]byte, error) {
	var fsys fs.FS
	if pf.path == "-" {
		data, err := io.ReadAll(io.LimitReader(a.Stdin, artifact.DefaultMaxFileSize+1))
		if err != nil {
			return nil, err
		}
		if len(data) > artifact.DefaultMaxFileSize {
			return nil, fmt.Errorf("%w: stdin is larger than %s", artifact.ErrTooLarge, artifact.FormatSize(artifact.DefaultMaxFileSize))
		}
		fsys = ociartifact.SingleFile(stdinName, bytes.TrimRight(data, "\r\n"), 0o600)
	} else {
		var err error
		if fsys, err = ociartifact.SourceFS(pf.path); err != nil {
			return nil, err
		}
	}
	layer, err := ociartifact.BuildLayer(fsys, pf.ig.patterns(), artifact.Limits{})
	if err != nil {
		return nil, fmt.Errorf("building artifact failed: %w", err)
	}
	if pf.requireEnc {
		if err := requireEncrypted(layer); err != nil {
			return nil, err
		}
	}
	return layer, nil
}

// requireEncrypted applies check secrets' rule (kubesecret.Plain) to every
// file the artifact holds.
func requireEncrypted(layer []byte) error {
	files, err := artifact.Extract(layer, artifact.Limits{})
	if err != nil {
		return err
	}
	var plain []string
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if kubesecret.Plain(n, files[n]) {
			plain = append(plain, fmt.Sprintf("%q", n))
		}
	}
	if len(plain) > 0 {
		return fmt.Errorf("--require-encrypted-secrets: not pushed: Kubernetes Secret is not SOPS-encrypted in %s", strings.Join(plain, ", "))
	}
	return nil
}
