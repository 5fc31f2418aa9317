// Command lacre encrypts and decrypts SOPS files and operates lacre's GitOps
// controllers.
package main

import (
	"os"

	"github.com/lacre/lacre/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
