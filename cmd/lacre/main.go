// Command lacre encrypts and decrypts SOPS files. Its cluster commands
// (controller, create, get, ...) run the companion executable lacre-cluster,
// so that the file commands start without the Kubernetes client libraries.
package main

import (
	"os"

	"github.com/lacre/lacre/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], nil))
}
