package cluster

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/controller"
)

func (a *app) controllerCommand() *cobra.Command {
	var opts controller.Options
	var logLevel string
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the GitOps controllers against the cluster in KUBECONFIG or in-cluster",
		Long: `Run lacre's controller manager: the GitRepository controller, which fetches Git
repositories and serves their trees as artifacts over HTTP, and the Kustomization
controller, which builds them with kustomize, decrypts SOPS files in memory and
applies the result.

Outside a cluster, with no flags, artifacts live in a temporary directory and are
served on a free loopback port.`,
		Example: `  KUBECONFIG=~/.kube/config lacre controller
  lacre controller --storage-path=/data --storage-addr=:9090 --storage-adv-addr=lacre.flux-system.svc:9090 --leader-elect`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lvl := zapcore.InfoLevel
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return cliapp.Codef(cliapp.CodeGeneric, "invalid --log-level %q: use debug, info or error", logLevel)
			}
			ctrl.SetLogger(zap.New(zap.Level(lvl), zap.WriteTo(a.Stderr)))
			opts.RuntimeNamespace = a.Getenv("RUNTIME_NAMESPACE")
			if err := opts.Complete(); err != nil {
				return cliapp.WithCode(cliapp.CodeGeneric, err)
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("no cluster: %v", err)
			}
			opts.Config = cfg
			opts.Decryption.GCP.Endpoint = a.Getenv("SOPS_GCP_KMS_ENDPOINT")
			m, err := controller.NewManager(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre: serving artifacts from %s\n", m.Storage.Root())
			return m.Run(cmd.Context())
		},
	}
	opts.BindFlags(cmd.Flags())
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info or error")
	return cmd
}
