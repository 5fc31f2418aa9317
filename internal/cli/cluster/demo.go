package cluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/demo"
	"github.com/lacre/lacre/internal/testcluster"
)

func (a *app) demoCommand() *cobra.Command {
	var opts demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the seed guide end to end on an embedded local cluster",
		Long: `Start a real etcd and kube-apiserver on loopback (built by hack/k8s/build.sh),
a Git server with an age-encrypted Secret, and lacre's controllers; create the
GitRepository and the Kustomization with SOPS decryption, read the Secret back
decrypted, change it in Git and show the cluster following. Cleans up after
itself.`,
		Example: `  ./hack/demo.sh     # builds the control plane once, then runs this`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Out = a.Stdout
			opts.CLI = func(ctx context.Context, args ...string) error {
				sub := &cliapp.App{Stdin: a.Stdin, Stdout: a.Stdout, Stderr: a.Stderr, Getenv: a.Getenv}
				if code := sub.Run(ctx, args, Extend); code != 0 {
					return fmt.Errorf("lacre %s failed (exit %d)", strings.Join(args, " "), code)
				}
				return nil
			}
			return demo.Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.BinDir, "bin-dir", testcluster.DefaultBinDir(), "directory holding kube-apiserver and etcd")
	return cmd
}
