package cliapp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cloudproto"
)

// Extension adds commands to the root command of one run: package cli's
// Commands adds the file commands, package cluster's Extend the cluster
// commands; in lacre, CompanionStubs stand in for the latter.
type Extension func(a *App, root *cobra.Command)

// Main runs the CLI with args and the commands exts add, and returns the
// process exit code.
func Main(args []string, exts ...Extension) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, LookupEnv: os.LookupEnv}
	return a.Run(ctx, args, exts...)
}

// Run runs args with the commands exts add, and returns the exit code.
func (a *App) Run(ctx context.Context, args []string, exts ...Extension) int {
	a.args = args
	defer a.closeCloud()
	defer a.closeKeyServices()
	root := a.rootCommand(exts)
	if c := companionCommand(root, args); c != nil {
		return a.exitCode(a.runCompanion(ctx, c.Name()))
	}
	root.SetArgs(args)
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	err := root.ExecuteContext(ctx)
	var rr *Rerun
	if errors.As(err, &rr) && !a.rerun {
		a.rerun = true // once: a legacy form becomes a subcommand
		return a.Run(ctx, rr.Args, exts...)
	}
	return a.exitCode(err)
}

// Rerun is what a command returns to have Run run again with Args, in a
// fresh command tree: sops's legacy forms ("sops -d FILE") become their
// subcommands ("decrypt FILE").
type Rerun struct{ Args []string }

func (r *Rerun) Error() string { return "rerun " + strings.Join(r.Args, " ") }

// RootCommand is the root command with the commands exts add, for tests
// and documentation that list commands and flags.
func (a *App) RootCommand(exts ...Extension) *cobra.Command { return a.rootCommand(exts) }

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

func (a *App) rootCommand(exts []Extension) *cobra.Command {
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
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		a.indentSet = cmd.Flags().Changed("indent")
		return a.resolveKeyServices(cmd)
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return WithCode(CodeGeneric, fmt.Errorf("%v (see %q)", err, c.CommandPath()+" --help"))
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "path to the .sops.yaml config file (default: found by walking up from the working directory; env SOPS_CONFIG)")
	pf.IntVar(&a.indent, "indent", 0, "indentation of YAML and JSON output (default: 4 for YAML, a tab for JSON)")
	pf.BoolVar(&a.verbose, "verbose", false, "print what is being done to stderr")
	a.registerKeyServiceFlags(root)
	root.AddCommand(a.versionCommand(), a.completionCommand())
	for _, ext := range exts {
		ext(a, root)
	}
	if a.CloudKeys != nil {
		root.AddCommand(cloudproto.Command(a.Stdin, a.Stdout, a.CloudKeys, a.KeyServiceDial, a.Uploader))
	}
	groupCommands(root)
	rejectUnknownSubcommands(root)
	return root
}

// sopsCommands are the commands of the sops 3.13 CLI: "lacre --help"
// lists them apart from lacre's own, so that a sops user sees what is the
// same.
var sopsCommands = map[string]bool{
	"completion": true, "exec-env": true, "exec-file": true, "publish": true, "keyservice": true,
	"filestatus": true, "groups": true, "updatekeys": true, "decrypt": true, "encrypt": true,
	"rotate": true, "edit": true, "set": true, "unset": true, "help": true,
}

// groupCommands puts each command of root in the group "sops" or "lacre".
func groupCommands(root *cobra.Command) {
	root.AddGroup(
		&cobra.Group{ID: "sops", Title: "Commands of sops 3.13 (same names, flags and exit codes):"},
		&cobra.Group{ID: "lacre", Title: "lacre's extensions (not in sops):"},
	)
	root.SetHelpCommandGroupID("sops")
	root.SetCompletionCommandGroupID("sops")
	for _, c := range root.Commands() {
		if sopsCommands[c.Name()] {
			c.GroupID = "sops"
		} else {
			c.GroupID = "lacre"
		}
	}
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
