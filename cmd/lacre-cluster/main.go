// Command lacre-cluster is lacre's companion executable: the full command
// line, with the cluster and operator commands (controller, create, get,
// install, build, diff, check, ...) that lacre runs it for.
package main

import (
	"os"

	// Mozilla's roots, used only where the system has none: the release
	// image has no CA bundle of its own.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/lacre/lacre/internal/cli"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/cluster"
	"github.com/lacre/lacre/internal/cli/kscmd"
)

func main() {
	os.Exit(cliapp.Main(os.Args[1:], cli.Commands, cluster.Extend, kscmd.Extend))
}
