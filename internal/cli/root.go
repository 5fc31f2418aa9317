// Package cli implements the lacre command line: the root command and the
// file commands. The cluster commands are in package cluster, linked only
// into the companion executable lacre-cluster; cmd/lacre registers stubs
// for them that run the companion. cmd/lacre and cmd/lacre-cluster are thin
// wrappers around Main so that tests can run the CLI in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/lacre/lacre/sops"
	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/lacre/lacre/internal/cli.Version=...".
var Version = "0.1.0-dev"

// App holds the process-wide options and streams of one CLI run. Package
// cluster builds its commands on it.
type App struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment; tests pass their own.
	Getenv func(string) string
	// CloudKeys builds the AWS KMS, GCP KMS and Azure Key Vault keys.
	// lacre-cluster sets it in its Extension; nil (in lacre) uses the
	// companion through a coprocess.
	CloudKeys CloudKeys

	configPath string
	indent     int
	indentSet  bool
	verbose    bool
	args       []string // the arguments of this run, for the companion
	cloud      *cloudProxy
}

func (a *App) env(k string) string { return a.Getenv(k) }

// Warnf prints "lacre: warning: ..." to stderr.
func (a *App) Warnf(format string, args ...any) {
	fmt.Fprintf(a.Stderr, "lacre: warning: "+format+"\n", args...)
}

// Infof prints "lacre: ..." to stderr with --verbose.
func (a *App) Infof(format string, args ...any) {
	if a.verbose {
		fmt.Fprintf(a.Stderr, "lacre: "+format+"\n", args...)
	}
}

// ConfigPath is the .sops.yaml named by --config or SOPS_CONFIG, "" when
// neither is set.
func (a *App) ConfigPath() string {
	if a.configPath != "" {
		return a.configPath
	}
	return a.env("SOPS_CONFIG")
}

// Extension adds commands to the root command of one run. Package cluster's
// adds the cluster commands; without one, stubs that run the companion
// executable lacre-cluster stand in for them.
type Extension func(a *App, root *cobra.Command)

// Main runs the CLI with args and returns the process exit code.
func Main(args []string, ext Extension) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	return a.Run(ctx, args, ext)
}

// Run runs args with the file commands and the commands ext adds, and
// returns the exit code.
func (a *App) Run(ctx context.Context, args []string, ext Extension) int {
	a.args = args
	defer a.closeCloud()
	root := a.rootCommand(ext)
	if ext == nil {
		if c := companionCommand(root, args); c != nil {
			return a.exitCode(a.runCompanion(ctx, c.Name()))
		}
	}
	root.SetArgs(args)
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	return a.exitCode(root.ExecuteContext(ctx))
}

// exitCode prints err, if any, and returns its exit code.
func (a *App) exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) && ee.Err == errSilent {
		return ee.Code
	}
	msg := err.Error()
	fmt.Fprintf(a.Stderr, "lacre: error: %s\n", strings.TrimRight(msg, "\n"))
	if code := CodeFor(err); code != 0 {
		return code
	}
	return 1
}

// errSilent marks an exit code whose message was already printed.
var errSilent = errors.New("")

// SilentExit is an error that makes the process exit with code and print
// nothing (what there was to say is said).
func SilentExit(code int) error { return &ExitError{Code: code, Err: errSilent} }

func (a *App) rootCommand(ext Extension) *cobra.Command {
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
		return WithCode(CodeGeneric, fmt.Errorf("%v (see %q)", err, c.CommandPath()+" --help"))
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
		a.completionCommand(),
		a.checkCommand(),
	)
	if ext != nil {
		ext(a, root)
		if a.CloudKeys != nil {
			root.AddCommand(a.cloudKeysCommand())
		}
	} else {
		root.AddCommand(a.companionStubs()...)
	}
	rejectUnknownSubcommands(root)
	return root
}

// rejectUnknownSubcommands makes "lacre delete helmrelease x" (a command
// with subcommands and no action of its own, given an unknown one) an
// error, not the help text with exit 0.
func rejectUnknownSubcommands(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasParent() && !c.Runnable() && c.HasSubCommands() {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				var names []string
				for _, s := range cmd.Commands() {
					if s.IsAvailableCommand() {
						names = append(names, s.Name())
					}
				}
				return Codef(CodeGeneric, "unknown command %q for %q: use one of %s", args[0], cmd.CommandPath(), strings.Join(names, ", "))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func (a *App) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print lacre's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(a.Stdout, "lacre %s (sops format %s)\n", Version, sops.FormatVersion)
			return nil
		},
	}
}
