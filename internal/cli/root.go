// Package cli implements the lacre command line. cmd/lacre is a thin wrapper
// around Main so that tests can run the CLI in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/lacre/lacre/internal/cli.Version=...".
var Version = "0.1.0-dev"

// app holds the process-wide options and streams of one CLI run.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	configPath string
	indent     int
	indentSet  bool
	verbose    bool
}

func (a *app) env(k string) string { return a.getenv(k) }

func (a *app) warnf(format string, args ...any) {
	fmt.Fprintf(a.stderr, "lacre: warning: "+format+"\n", args...)
}

func (a *app) infof(format string, args ...any) {
	if a.verbose {
		fmt.Fprintf(a.stderr, "lacre: "+format+"\n", args...)
	}
}

// Main runs the CLI with args and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.err == errSilent {
		return ee.code
	}
	msg := err.Error()
	fmt.Fprintf(a.stderr, "lacre: error: %s\n", strings.TrimRight(msg, "\n"))
	if code := codeFor(err); code != 0 {
		return code
	}
	return 1
}

// errSilent marks an exit code whose message was already printed.
var errSilent = errors.New("")

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "lacre",
		Short: "Encrypt secrets with SOPS and deliver them with GitOps",
		Long: `lacre encrypts values in YAML, JSON, dotenv, INI and binary files in the SOPS
format (compatible with the sops CLI), and runs Flux-compatible controllers that
decrypt them in the cluster.`,
		Example: `  lacre keygen -o key.txt
  lacre encrypt --age age1... secret.yaml > secret.enc.yaml
  SOPS_AGE_KEY_FILE=key.txt lacre decrypt secret.enc.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.PersistentPreRun = func(cmd *cobra.Command, args []string) {
		a.indentSet = cmd.Flags().Changed("indent")
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(codeGeneric, fmt.Errorf("%v (see %q)", err, c.CommandPath()+" --help"))
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "path to the .sops.yaml config file (default: found by walking up from the working directory; env SOPS_CONFIG)")
	pf.IntVar(&a.indent, "indent", 0, "indentation of YAML and JSON output (default: 4 for YAML, a tab for JSON)")
	pf.BoolVar(&a.verbose, "verbose", false, "print what is being done to stderr")
	root.AddCommand(
		a.encryptCommand(),
		a.decryptCommand(),
		a.editCommand(),
		a.setCommand(),
		a.unsetCommand(),
		a.filestatusCommand(),
		a.rotateCommand(),
		a.updatekeysCommand(),
		a.keygenCommand(),
		a.keysCommand(),
		a.groupsCommand(),
		a.versionCommand(),
		a.controllerCommand(),
		a.demoCommand(),
		a.createCommand(),
		a.getCommand(),
		a.reconcileCommand(),
		a.exportCommand(),
		a.installCommand(),
		a.uninstallCommand(),
		a.treeCommand(),
		a.eventsCommand(),
		a.deleteCommand(),
		a.completionCommand(),
		a.buildCommand(),
		a.diffCommand(),
		a.checkCommand(),
	)
	root.AddCommand(a.suspendCommands()...)
	decorateOperatorCommands(root)
	return root
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print lacre's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(a.stdout, "lacre %s (sops format %s)\n", Version, "3.13.3")
			return nil
		},
	}
}
