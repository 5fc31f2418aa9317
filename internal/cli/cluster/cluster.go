// Package cluster implements lacre's cluster and operator commands
// (controller, create, get, install, build, diff, ...). They link
// the Kubernetes client libraries, so they live in their own executable,
// lacre-cluster, which lacre runs for them; Main runs the full command tree.
package cluster

import (
	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli"
	"github.com/lacre/lacre/internal/cli/cloudkeys"
)

// app is the run's cli.App, with the cluster commands as its methods.
type app struct{ *cli.App }

// Main runs the full command line (file and cluster commands) with args and
// returns the process exit code.
func Main(args []string) int { return cli.Main(args, Extend) }

// Extend adds the cluster commands to root, and builds cloud keys in
// process (lacre asks lacre-cluster for them).
func Extend(ca *cli.App, root *cobra.Command) {
	ca.CloudKeys = cloudkeys.New(ca.Getenv)
	root.AddCommand(commands(ca)...)
	decorateOperatorCommands(root)
}

// commands are the cluster commands, in the order of cli.ClusterCommands.
func commands(ca *cli.App) []*cobra.Command {
	a := &app{ca}
	cmds := []*cobra.Command{
		a.buildCommand(),
		a.controllerCommand(),
		a.createCommand(),
		a.deleteCommand(),
		a.demoCommand(),
		a.diffCommand(),
		a.eventsCommand(),
		a.exportCommand(),
		a.getCommand(),
		a.installCommand(),
		a.reconcileCommand(),
	}
	cmds = append(cmds, a.suspendCommands()...)
	cmds = append(cmds, a.treeCommand(), a.uninstallCommand())
	return cmds
}
