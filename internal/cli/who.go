package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) keysCommand() *cobra.Command {
	var df decryptFlags
	var ff formatFlags
	var recursive bool
	cmd := &cobra.Command{
		Use:     "keys [flags] FILE|DIR ...",
		Aliases: []string{"who"},
		Short:   "List who can decrypt files: key groups, master keys, threshold",
		Long: `For each file, list its key groups and master keys, the Shamir threshold, and
whether the keys available here can unwrap each master key. Values are not
decrypted.`,
		Example: `  lacre keys secret.enc.yaml
  lacre who -r secrets/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := expandPaths(args, recursive)
			if err != nil {
				return err
			}
			s, err := a.newSession()
			if err != nil {
				return err
			}
			ids := s.keys.Identities()
			ctx := cmd.Context()
			for _, file := range files {
				// A bad --input-type is not the file's error: no file name.
				if _, _, err := ff.formats(file); err != nil {
					return err
				}
				f, err := a.openFile(file, &ff, s)
				if err != nil {
					return prefixErr(file, err)
				}
				m := f.tree.Metadata
				fmt.Fprintf(a.Stdout, "%s:\n", file)
				if len(m.KeyGroups) > 1 {
					fmt.Fprintf(a.Stdout, "  shamir threshold: %d of %d groups\n", m.ShamirThreshold, len(m.KeyGroups))
				}
				okGroups := 0
				for gi, g := range m.KeyGroups {
					fmt.Fprintf(a.Stdout, "  group %d:\n", gi)
					groupOK := false
					for _, s := range g {
						status := "cannot decrypt here"
						for _, id := range ids {
							if _, err := id.Unwrap(ctx, s); err == nil {
								status, groupOK = "can decrypt here", true
								break
							}
						}
						fmt.Fprintf(a.Stdout, "    %-8s %s  (%s)\n", s.Type, s.ID(), status)
					}
					if groupOK {
						okGroups++
					}
				}
				need := 1
				if len(m.KeyGroups) > 1 {
					need = m.ShamirThreshold
				}
				verdict := "no"
				if okGroups >= need {
					verdict = "yes"
				}
				fmt.Fprintf(a.Stdout, "  decryptable here: %s (%d of %d needed groups)\n", verdict, okGroups, need)
			}
			return nil
		},
	}
	df.register(cmd)
	cmd.Flags().StringVar(&ff.inputType, "input-type", "", "file format (default: by extension)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "list every file below the given directories")
	return cmd
}
