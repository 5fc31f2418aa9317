package cluster

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/keys/vault"
)

func (a *app) controllerCommand() *cobra.Command {
	var opts controller.Options
	var logLevel, ageSecret, ageNamespaces, vaultAllow string
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
			if ageSecret != "" {
				ns, name, ok := strings.Cut(ageSecret, "/")
				if !ok || ns == "" || name == "" {
					return cliapp.Codef(cliapp.CodeGeneric, "--sops-age-secret must be NAMESPACE/NAME, got %q", ageSecret)
				}
				if ageNamespaces == "" {
					return cliapp.Codef(cliapp.CodeGeneric, "%s", "--sops-age-secret needs --sops-age-secret-namespaces (a namespace label selector; \"*\" for every namespace)")
				}
				sel := labels.Everything()
				if ageNamespaces != "*" {
					var err error
					if sel, err = labels.Parse(ageNamespaces); err != nil {
						return cliapp.Codef(cliapp.CodeGeneric, "--sops-age-secret-namespaces: %v", err)
					}
				}
				opts.Decryption.DefaultAgeSecret = types.NamespacedName{Namespace: ns, Name: name}
				opts.Decryption.DefaultAgeNamespaces = sel
			}
			if sa := opts.DefaultServiceAccount; sa != "" {
				if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
					return cliapp.Codef(cliapp.CodeGeneric, "--default-service-account %q: %s", sa, strings.Join(errs, "; "))
				}
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("no cluster: %v", err)
			}
			opts.Config = cfg
			opts.Decryption.GCP.Endpoint = a.Getenv("SOPS_GCP_KMS_ENDPOINT")
			opts.Decryption.VaultAllowlist = vault.ParseAllowlist(vaultAllow)
			m, err := controller.NewManager(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre: serving artifacts from %s\n", m.Storage.Root())
			return m.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.MetricsAddr, "metrics-addr", ":8080", "address of the Prometheus metrics endpoint (0 disables)")
	f.StringVar(&opts.HealthAddr, "health-addr", ":9440", "address of the health probes (0 disables)")
	f.BoolVar(&opts.LeaderElection, "leader-elect", false, "use leader election (for several replicas)")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease")
	f.IntVar(&opts.Concurrent, "concurrent", 4, "reconciles run in parallel per controller")
	f.StringSliceVar(&opts.WatchNamespaces, "watch-namespace", nil, "namespaces to watch (default: all)")
	f.StringVar(&opts.WatchSelector, "watch-label-selector", "", "only reconcile objects with these labels (sharding)")
	f.StringVar(&opts.StoragePath, "storage-path", "", "artifact directory (default: a temporary directory)")
	f.StringVar(&opts.StorageAddr, "storage-addr", "127.0.0.1:0", "artifact server listen address")
	f.StringVar(&opts.StorageAdvAddr, "storage-adv-addr", "", "artifact server address advertised in artifact URLs")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info or error")
	f.StringVar(&ageSecret, "sops-age-secret", "", "NAMESPACE/NAME of a Secret whose *.agekey entries every Kustomization in the selected namespaces may use")
	f.StringVar(&ageNamespaces, "sops-age-secret-namespaces", "", "label selector of the namespaces --sops-age-secret applies to (\"*\": all)")
	f.StringVar(&vaultAllow, "sops-vault-allowlist", "", "comma-separated Vault address prefixes a sops.vault-token may be sent to (default: any, as Flux; \"none\" for none)")
	f.BoolVar(&opts.Decryption.AmbientCloudCredentials, "ambient-cloud-credentials", false, "let Kustomizations use the controller's own AWS/GCP/Azure identity for KMS keys")
	f.BoolVar(&opts.NoCrossNamespaceRefs, "no-cross-namespace-refs", false, "refuse Kustomizations whose sourceRef or dependsOn names another namespace (Ready=False, Stalled, AccessDenied)")
	f.StringVar(&opts.DefaultServiceAccount, "default-service-account", "", "ServiceAccount impersonated, in the Kustomization's namespace, when spec.serviceAccountName is empty (default: the controller's own identity)")
	f.BoolVar(&opts.RequireEncryptedSecrets, "require-encrypted-secrets", false, "refuse Kubernetes Secrets committed to Git without SOPS encryption")
	return cmd
}
