package cluster

import (
	"github.com/lacre/lacre/internal/cli"
	"github.com/lacre/lacre/internal/cli/cliapp"
)

// full is lacre-cluster's full command tree, as cmd/lacre-cluster composes
// it: package cli's file commands and the cluster commands. Only the tests
// import package cli; the package itself does not.
var full = []cliapp.Extension{cli.Commands, Extend}
