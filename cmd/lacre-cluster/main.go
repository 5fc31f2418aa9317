// Command lacre-cluster is lacre's companion executable: the full command
// line, with the cluster and operator commands (controller, create, get,
// install, build, diff, check, ...) that lacre runs it for.
package main

import (
	"os"

	"github.com/lacre/lacre/internal/cli/cluster"
)

func main() {
	os.Exit(cluster.Main(os.Args[1:]))
}
