package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
)

// decryptFlags are shared by the commands that decrypt.
type decryptFlags struct {
	ignoreMAC       bool
	decryptionOrder string
}

func (df *decryptFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&df.ignoreMAC, "ignore-mac", false, "do not check the MAC (values must still authenticate)")
	f.StringVar(&df.decryptionOrder, "decryption-order", "", "master key types to try first, comma separated (default \"age,pgp\"; env SOPS_DECRYPTION_ORDER)")
}

func (a *app) decryptCommand() *cobra.Command {
	var df decryptFlags
	var bf batchFlags
	var extract string
	cmd := &cobra.Command{
		Use:   "decrypt [flags] FILE|DIR|- ...",
		Short: "Decrypt files",
		Long: `Decrypt SOPS files with the keys at hand: age identities (SOPS_AGE_KEY,
SOPS_AGE_KEY_FILE, SOPS_AGE_KEY_CMD, SOPS_AGE_SSH_PRIVATE_KEY_FILE, ~/.ssh/id_ed25519,
and ~/.config/sops/age/keys.txt), gpg, Vault (VAULT_TOKEN) and cloud KMS credentials.

Several files (and directories with -r) are decrypted in one run; their outputs go
to stdout one after the other, or back into each file with --in-place.`,
		Example: `  lacre decrypt secret.enc.yaml
  lacre decrypt --extract '["data"]["password"]' secret.enc.yaml
  lacre decrypt -r secrets/ > /dev/null   # check that every file decrypts`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"-"}
			}
			var path []any
			parse := func() (err error) {
				if extract != "" {
					if path, err = sops.ParsePath(extract); err != nil {
						return cliapp.WithCode(cliapp.CodeInvalidTreePathFormat, err)
					}
				}
				return nil
			}
			return a.runBatch(cmd.Context(), args, &bf, "", parse, func(ctx context.Context, s *session, file string) ([]byte, error) {
				f, err := a.openFile(file, &bf.ff, s)
				if err != nil {
					return nil, err
				}
				if err := f.decryptOnly(ctx, &df); err != nil {
					return nil, err
				}
				tree, store := f.tree, formats.NewStore(f.out, s.storeOpts)
				if path != nil {
					if len(tree.Branches) == 0 {
						return nil, cliapp.Codef(cliapp.CodeGeneric, "the file has no documents")
					}
					v, err := tree.Branches[0].Get(path)
					if err != nil {
						return nil, cliapp.WithCode(cliapp.CodeGeneric, err)
					}
					res, err := store.EmitValue(v)
					return res, cliapp.WithCode(cliapp.CodeErrorDumpingTree, err)
				}
				res, err := store.EmitPlainFile(tree.Branches)
				return res, cliapp.WithCode(cliapp.CodeErrorDumpingTree, err)
			})
		},
	}
	df.register(cmd)
	f := cmd.Flags()
	bf.register(f, "decrypt")
	f.StringVar(&bf.ff.inputType, "input-type", "", "input format: yaml, json, dotenv, ini or binary (default: by extension)")
	f.StringVar(&bf.ff.filenameOverride, "filename-override", "", "use this file name to pick the format")
	f.StringVar(&extract, "extract", "", `print only the value at this path, e.g. '["data"]["password"]'`)
	return cmd
}
