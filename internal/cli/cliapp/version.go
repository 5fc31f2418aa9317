package cliapp

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/sops"
)

// The build's identity, set by the release build (hack/release) with
//
//	-ldflags "-X github.com/lacre/lacre/internal/cli/cliapp.Version=0.2.0 -X ...Commit=<sha> -X ...Date=<RFC 3339>"
//
// ImageDigest is the digest (sha256:…) of the release's container image
// index, stamped into the binaries of the release archives (not into the
// image's own, which cannot hold their image's digest): `lacre install`
// then names the image by digest.
var (
	Version     = "0.1.0-dev"
	Commit      = ""
	Date        = ""
	ImageDigest = ""
)

// BuildInfo is what `lacre version --output json` prints.
type BuildInfo struct {
	Version     string `json:"version"`
	Commit      string `json:"commit,omitempty"`
	Date        string `json:"date,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
	SopsFormat  string `json:"sopsFormat"`
	GoVersion   string `json:"goVersion"`
	Platform    string `json:"platform"`
}

// Build returns this binary's BuildInfo.
func Build() BuildInfo {
	return BuildInfo{
		Version: Version, Commit: Commit, Date: Date, ImageDigest: ImageDigest,
		SopsFormat: sops.FormatVersion, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
}

func (a *App) versionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print lacre's version, commit and build date",
		Long: `Print lacre's version. The first line is the one earlier versions printed
("lacre VERSION (sops format X.Y.Z)"); the commit and build date follow when the
binary was built by the release (hack/release). --output json prints all of it
as one JSON object. Like sops with --disable-version-check, lacre never asks the
network for a newer version.`,
		Example: `  lacre version
  lacre version --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := Build()
			switch output {
			case "json":
				out, err := json.MarshalIndent(b, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.Stdout, "%s\n", out)
				return err
			case "text", "":
				fmt.Fprintf(a.Stdout, "lacre %s (sops format %s)\n", b.Version, b.SopsFormat)
				if b.Commit != "" {
					fmt.Fprintf(a.Stdout, "commit: %s\n", b.Commit)
				}
				if b.Date != "" {
					fmt.Fprintf(a.Stdout, "built: %s\n", b.Date)
				}
				if b.ImageDigest != "" {
					fmt.Fprintf(a.Stdout, "image: %s\n", b.ImageDigest)
				}
				return nil
			}
			return Codef(CodeGeneric, "unknown --output %q: use text or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
