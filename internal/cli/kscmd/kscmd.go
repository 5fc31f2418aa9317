// Package kscmd is lacre-cluster's side of sops's key service: the
// "keyservice" command, which serves this process's keys over gRPC, and
// the client of remote services for --keyservice. It links gRPC (package
// ksgrpc), so only lacre-cluster adds it; lacre runs the companion for
// "keyservice" and reaches remote services through it.
package kscmd

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/internal/keyservice/ksgrpc"
)

// Extend is the cliapp.Extension of lacre-cluster that dials key services
// in process and adds the keyservice command.
func Extend(a *cliapp.App, root *cobra.Command) {
	a.KeyServiceDial = func(uri string) (keyservice.Service, error) { return ksgrpc.Dial(uri) }
	root.AddCommand(Command(a))
}

// Command is "keyservice", with sops's flags.
func Command(a *cliapp.App) *cobra.Command {
	var network, address string
	var prompt bool
	cmd := &cobra.Command{
		Use:   cliapp.KeyServiceCommand.Name,
		Short: cliapp.KeyServiceCommand.Short,
		Long: `Serve sops's key service (gRPC, as "sops keyservice") with this process's keys:
a client (sops or lacre with --keyservice) sends a master key and a data key to
wrap, or a wrapped key to unwrap, and the key material stays here. Age and SSH
identities, gpg, Vault tokens and cloud credentials are read from this process's
environment, as for "lacre decrypt"; SOPS_ENABLE_LOCAL_KEYSERVICE does not apply.
Requests travel without TLS, as with sops: listen on a unix socket or loopback.`,
		Example: `  SOPS_AGE_KEY_FILE=key.txt lacre keyservice --network unix --address /tmp/sops.sock &
  sops decrypt --enable-local-keyservice=false --keyservice unix:///tmp/sops.sock secret.enc.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			lis, err := net.Listen(network, address)
			if err != nil {
				return err
			}
			srv := &ksgrpc.Server{
				// The server's keys are always this process's.
				Svc: keyservice.Local{Src: keysource.New(a.Getenv, a.Stderr, a.Cloud())},
				Log: a.Infof,
			}
			if prompt {
				srv.Prompt = &ksgrpc.Prompt{In: a.Stdin, Out: a.Stdout}
			}
			fmt.Fprintf(a.Stderr, "lacre: key service listening on %s://%s\n", lis.Addr().Network(), lis.Addr())
			return srv.Serve(ctx, lis)
		},
	}
	f := cmd.Flags()
	f.StringVar(&network, "network", "tcp", "network to listen on: tcp or unix")
	f.StringVar(&network, "net", "tcp", "same as --network")
	f.StringVar(&address, "address", "127.0.0.1:5000", "address to listen on, e.g. 127.0.0.1:5000 or /tmp/sops.sock")
	f.StringVar(&address, "addr", "127.0.0.1:5000", "same as --address")
	f.BoolVar(&prompt, "prompt", false, "ask on the terminal to confirm every request")
	_ = f.MarkHidden("net")
	_ = f.MarkHidden("addr")
	return cmd
}
