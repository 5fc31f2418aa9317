package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// manCommand writes a man page per command with cobra's generator. It is a
// companion command so that the pages describe every command with its real
// flags (lacre's own tree only has stubs for the cluster commands).
func (a *app) manCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "man",
		Short: "Write man pages for every command",
		Long: `Write a man page (section 1) for every command into --dir: lacre.1,
lacre-decrypt.1, lacre-create-source-git.1, and so on. The pages carry the
build date of this binary (or SOURCE_DATE_EPOCH, else today), so a release
build writes the same pages every time.`,
		Example: `  lacre man --dir /usr/local/share/man/man1 && mandb
  lacre man --dir ./man && man ./man/lacre-encrypt.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			header := &doc.GenManHeader{Title: "LACRE", Section: "1", Source: "lacre " + cliapp.Version, Manual: "lacre manual"}
			if d, err := time.Parse(time.RFC3339, cliapp.Date); err == nil {
				header.Date = &d
			}
			if err := doc.GenManTree(root, header, dir); err != nil {
				return err
			}
			abs, _ := filepath.Abs(dir)
			fmt.Fprintf(a.Stderr, "lacre: man pages written to %s\n", abs)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "man", "directory to write the pages to (created if missing)")
	return cmd
}
