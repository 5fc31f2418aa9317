package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
)

func (a *app) filestatusCommand() *cobra.Command {
	var ff formatFlags
	cmd := &cobra.Command{
		Use:   "filestatus [flags] FILE ...",
		Short: "Tell whether files are encrypted",
		Long: `Print {"encrypted":true} or {"encrypted":false} for a file, as sops does. With
several files, print one JSON object per line with the file name.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := expandPaths(args, true)
			if err != nil {
				return err
			}
			for _, file := range files {
				in, _, err := ff.formats(file)
				if err != nil {
					return err
				}
				data, err := a.readInput(file)
				if err != nil {
					// sops exits 1 here, a missing file included
					return cliapp.WithCode(cliapp.CodeGeneric, errors.Unwrap(err))
				}
				_, err = formats.NewStore(in, formats.Options{}).LoadEncryptedFile(data)
				encrypted := err == nil
				if err != nil && !errors.Is(err, sops.ErrMetadataNotFound) {
					var me *sops.MetadataError
					if !errors.As(err, &me) {
						return prefixErr(file, cliapp.WithCode(cliapp.CodeGeneric, err))
					}
				}
				if len(files) == 1 {
					fmt.Fprintf(a.Stdout, "{\"encrypted\":%t}\n", encrypted)
				} else {
					name, _ := json.Marshal(file)
					fmt.Fprintf(a.Stdout, "{\"file\":%s,\"encrypted\":%t}\n", name, encrypted)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ff.inputType, "input-type", "", "file format (default: by extension)")
	return cmd
}
