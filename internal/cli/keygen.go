package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"filippo.io/age"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/spf13/cobra"
)

func (a *app) keygenCommand() *cobra.Command {
	var output string
	var pq bool
	cmd := &cobra.Command{
		Use:   "keygen [-o FILE]",
		Short: "Generate an age identity",
		Long: `Generate an age identity (private key) and print its public key (recipient) to
stderr. With -o the identity is written to FILE with mode 0600; an existing file is
never overwritten.`,
		Example: `  lacre keygen -o ~/.config/sops/age/keys.txt
  lacre keygen --pq -o pq.agekey`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var secret, public string
			if pq {
				id, err := age.GenerateHybridIdentity()
				if err != nil {
					return err
				}
				secret, public = id.String(), id.Recipient().String()
			} else {
				id, err := age.GenerateX25519Identity()
				if err != nil {
					return err
				}
				secret, public = id.String(), id.Recipient().String()
			}
			text := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), public, secret)
			if output == "" || output == "-" {
				if _, err := fmt.Fprint(a.Stdout, text); err != nil {
					return err
				}
				fmt.Fprintf(a.Stderr, "Public key: %s\n", public)
				return nil
			}
			f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				if errors.Is(err, fs.ErrExist) {
					return cliapp.Codef(cliapp.CodeCouldNotWriteOutput, "%s already exists; refusing to overwrite an identity", output)
				}
				return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
			}
			if _, err := f.WriteString(text); err != nil {
				f.Close()
				return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
			}
			if err := f.Close(); err != nil {
				return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
			}
			fmt.Fprintf(a.Stderr, "Public key: %s\n", public)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the identity to this file (mode 0600, never overwritten)")
	cmd.Flags().BoolVar(&pq, "pq", false, "generate a post-quantum hybrid identity (age1pq1...)")
	return cmd
}
