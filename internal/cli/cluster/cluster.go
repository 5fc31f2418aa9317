// Package cluster implements lacre's cluster and operator commands
// (controller, create, get, install, build, diff, ...). They link
// the Kubernetes client libraries, so they live in their own executable,
// lacre-cluster, which lacre runs for them: cmd/lacre-cluster runs Extend
// with package cli's file commands, the full command tree.
package cluster

import (
	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/cloudkeys"
	"github.com/lacre/lacre/internal/cli/ocicmd"
)

// app is the run's cliapp.App, with the cluster commands as its methods.
type app struct{ *cliapp.App }

// Extend is the cliapp.Extension that adds the cluster commands to root, and builds cloud keys in
// process (lacre asks lacre-cluster for them).
func Extend(ca *cliapp.App, root *cobra.Command) {
	ca.CloudKeys = cloudkeys.New(ca.Getenv)
	ca.Uploader = cloudkeys.Uploader{}
	root.AddCommand(commands(ca)...)
	decorateOperatorCommands(root)
}

// commands are the cluster commands, in the order of cliapp.ClusterCommands.
func commands(ca *cliapp.App) []*cobra.Command {
	a := &app{ca}
	build, diff := a.buildCommand(), a.diffCommand()
	build.AddCommand(ocicmd.BuildArtifactCommand(ca))
	diff.AddCommand(ocicmd.DiffArtifactCommand(ca))
	cmds := []*cobra.Command{
		build,
		a.controllerCommand(),
		a.createCommand(),
		a.deleteCommand(),
		a.demoCommand(),
		a.devCommand(),
		diff,
		a.eventsCommand(),
		a.exportCommand(),
		a.getCommand(),
		a.installCommand(),
		a.manCommand(),
		a.reconcileCommand(),
	}
	cmds = append(cmds, a.suspendCommands()...)
	cmds = append(cmds, a.treeCommand(), a.uninstallCommand())
	cmds = append(cmds, ocicmd.Commands(ca)...) // push, pull, tag, list
	return cmds
}
