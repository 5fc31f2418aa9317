package cluster

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

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
itself.

With --keep, everything stays up afterwards: it prints the KUBECONFIG to
export, the Git URL to clone, the age key file and commands to try, and runs
until Ctrl-C (or "lacre dev down --dir" with the directory it prints), then
stops everything and removes what it wrote. The decrypted Secret is encrypted
at rest in the demo's etcd, as in "lacre dev".`,
		Example: `  ./hack/demo.sh     # builds the control plane once, then runs this
  lacre demo --keep  # the same, then keep playing`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Out = a.Stdout
			opts.CLI = func(ctx context.Context, args ...string) error {
				sub := &cliapp.App{Stdin: a.Stdin, Stdout: a.Stdout, Stderr: a.Stderr, Getenv: a.Getenv}
				if code := sub.Run(ctx, args, Extend); code != 0 {
					return fmt.Errorf("lacre %s failed (exit %d)", strings.Join(args, " "), code)
				}
				return nil
			}
			ctx := cmd.Context()
			if opts.Keep {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			return demo.Run(ctx, opts)
		},
	}
	cmd.Flags().StringVar(&opts.BinDir, "bin-dir", testcluster.DefaultBinDir(), "directory holding kube-apiserver and etcd")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep everything running afterwards, until Ctrl-C or lacre dev down")
	return cmd
}
