package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/devcluster"
	"github.com/lacre/lacre/internal/testcluster"
)

func (a *app) devCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "A local control plane with lacre's controllers, kept in a directory",
		Long: `Run a real etcd and kube-apiserver on loopback (built by hack/k8s/build.sh)
with lacre's controllers, in the background, for your own experiments: no
Docker, no kind. The state is kept in a directory (--dir, default
$XDG_STATE_HOME/lacre/dev or ~/.local/state/lacre/dev), so "lacre dev up" again
finds your objects. lacre install's CRDs and RBAC are applied and the
flux-system namespace is created at every start.

Secrets are encrypted at rest in the kept etcd data (kube-apiserver's
EncryptionConfiguration, secretbox, its random key in
DIR/encryption-config.yaml, 0600): what the controllers decrypt never sits in
DIR as plaintext.`,
		Example: `  lacre dev up
  export KUBECONFIG=~/.local/state/lacre/dev/kubeconfig
  lacre create source git ...      # the seed guide's steps, verbatim
  lacre dev status
  lacre dev down`,
	}
	cmd.AddCommand(a.devUpCommand(), a.devStatusCommand(), a.devDownCommand(), a.devServeCommand())
	return cmd
}

// devDirFlag registers --dir with its default.
func (a *app) devDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "dir", a.defaultDevDir(), "directory holding the cluster's state")
}

// defaultDevDir is $XDG_STATE_HOME/lacre/dev or ~/.local/state/lacre/dev.
func (a *app) defaultDevDir() string {
	if s := a.Getenv("XDG_STATE_HOME"); s != "" {
		return filepath.Join(s, "lacre", "dev")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "lacre", "dev")
	}
	return ""
}

func absDir(dir string) (string, error) {
	if dir == "" {
		return "", cliapp.Codef(cliapp.CodeGeneric, "no --dir and no home directory")
	}
	return filepath.Abs(dir)
}

func (a *app) devUpCommand() *cobra.Command {
	var dir, binDir string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the local control plane and lacre's controllers in the background",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := absDir(dir)
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(binDir, "kube-apiserver")); err != nil {
				return fmt.Errorf("%w (looked in %s)", testcluster.ErrNoBinaries, binDir)
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre dev: starting in %s (log: %s)\n", d, filepath.Join(d, devcluster.LogFile))
			st, already, err := devcluster.Up(cmd.Context(), devcluster.UpOptions{
				Dir: d, Exe: exe, Timeout: timeout, Env: os.Environ(),
				Args: []string{os.Args[0], "dev", "serve", "--dir", d, "--bin-dir", binDir, "--ready-fd", fmt.Sprint(devcluster.ReadyFD)},
			})
			if err != nil {
				return err
			}
			if already {
				fmt.Fprintf(a.Stdout, "lacre dev: already running (pid %d) at %s\n", st.Pid, st.Host)
			} else {
				fmt.Fprintf(a.Stdout, "lacre dev: up (pid %d) at %s\n", st.Pid, st.Host)
			}
			a.devNext(d, st)
			return nil
		},
	}
	a.devDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&binDir, "bin-dir", testcluster.DefaultBinDir(), "directory holding kube-apiserver and etcd")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the control plane")
	return cmd
}

// devNext prints how to use a running dev cluster.
func (a *app) devNext(dir string, st *devcluster.State) {
	flag := ""
	if def, _ := absDir(a.defaultDevDir()); def != dir {
		flag = fmt.Sprintf(" --dir %q", dir)
	}
	fmt.Fprintf(a.Stdout, `
  export KUBECONFIG=%s
  kubectl get namespaces                # or: lacre get kustomizations -A
  lacre create secret sops sops-age --age-key-file=age.agekey
  lacre create source git ... && lacre create kustomization ... --decryption-provider=sops --decryption-secret=sops-age
  lacre dev status%s
  lacre dev down%s      # stops everything; the state stays for the next up
`, st.Kubeconfig, flag, flag)
}

func (a *app) devStatusCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether the local control plane runs, where, and its kubeconfig",
		Long:  "Exits 0 when it runs, 1 when it does not.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := absDir(dir)
			if err != nil {
				return err
			}
			st, err := devcluster.ReadState(d)
			if errors.Is(err, os.ErrNotExist) || (err == nil && !st.Running()) {
				return cliapp.Codef(cliapp.CodeGeneric, "not running in %s", d)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "running: pid %d since %s\napi server: %s\nkubeconfig: %s\nservers: %v\n",
				st.Pid, st.Started.Format(time.RFC3339), st.Host, st.Kubeconfig, st.Servers)
			return nil
		},
	}
	a.devDirFlag(cmd, &dir)
	return cmd
}

func (a *app) devDownCommand() *cobra.Command {
	var dir string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the local control plane and its controllers (the state stays)",
		Long: `Stop the process started by "lacre dev up" (or "lacre demo --keep") in --dir and
wait until it, etcd and kube-apiserver have exited. The directory stays, ready
for the next "lacre dev up" (a demo's directory is removed by the demo).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := absDir(dir)
			if err != nil {
				return err
			}
			st, err := devcluster.Down(cmd.Context(), d, timeout)
			if errors.Is(err, devcluster.ErrNotRunning) {
				fmt.Fprintf(a.Stdout, "lacre dev: not running in %s\n", d)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "lacre dev: stopped (pid %d)\n", st.Pid)
			return nil
		},
	}
	a.devDirFlag(cmd, &dir)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait before killing the processes")
	return cmd
}

// devServeCommand runs in the foreground what dev up runs in the
// background.
func (a *app) devServeCommand() *cobra.Command {
	var dir, binDir string
	var readyFD int
	cmd := &cobra.Command{
		Use:    "serve",
		Short:  "Run the local control plane and lacre's controllers in the foreground",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := absDir(dir)
			if err != nil {
				return err
			}
			var ready *os.File
			if readyFD > 0 {
				// Not passed on to etcd and kube-apiserver: dev up reads
				// until this process writes or exits.
				syscall.CloseOnExec(readyFD)
				ready = os.NewFile(uintptr(readyFD), "ready")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctrl.SetLogger(zap.New(zap.WriteTo(a.Stderr)))
			return devcluster.Serve(ctx, devcluster.Options{
				Dir: d, BinDir: binDir, Log: logFile(a.Stderr), Out: a.Stderr,
				Install: a.devInstall,
				Ready: func(devcluster.State) {
					if ready != nil {
						fmt.Fprintln(ready, "ready")
						ready.Close()
					}
				},
			})
		},
	}
	a.devDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&binDir, "bin-dir", testcluster.DefaultBinDir(), "directory holding kube-apiserver and etcd")
	cmd.Flags().IntVar(&readyFD, "ready-fd", 0, "file descriptor to write \"ready\" to once up")
	return cmd
}

// logFile returns w when it is a file (the servers' output goes there).
func logFile(w any) *os.File {
	f, _ := w.(*os.File)
	return f
}

// devInstall applies what `lacre install` applies, without what runs the
// controller in a pod (the Deployment, its Service and NetworkPolicy):
// the controllers run in the dev process itself.
func (a *app) devInstall(ctx context.Context, c client.Client) error {
	objs, err := installObjects(installOptions{namespace: defaultInstallNS, image: defaultImageRepo})
	if err != nil {
		return err
	}
	var keep []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "Service", "NetworkPolicy":
		default:
			keep = append(keep, o)
		}
	}
	return a.applyInstall(ctx, c, keep, time.Minute)
}
