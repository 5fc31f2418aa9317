package cli_test

import (
	"os"

	"github.com/lacre/lacre/internal/cli"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/cluster"
	"github.com/lacre/lacre/internal/cli/kscmd"
)

// The scripts' lacre runs this lacre-cluster for cluster commands and cloud
// keys.
func init() {
	cli.AddTestCommand("lacre-cluster", func() { os.Exit(cliapp.Main(os.Args[1:], cli.Commands, cluster.Extend, kscmd.Extend)) })
}
