package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
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

func (a *App) order(df *decryptFlags) []string {
	s := df.decryptionOrder
	if s == "" {
		s = a.env("SOPS_DECRYPTION_ORDER")
	}
	if s == "" {
		return nil
	}
	return splitList(s)
}

// loadEncrypted reads and parses an encrypted file.
func (a *App) loadEncrypted(path string, in formats.Format, storeOpts formats.Options) (*sops.Tree, error) {
	data, err := a.readInput(path)
	if err != nil {
		return nil, err
	}
	// data is this function's own buffer and never changes: the tree may
	// point into it instead of copying it.
	tree, err := sopsfile.LoadView(data, in, storeOpts)
	if err != nil {
		if errors.Is(err, sops.ErrNoDocuments) {
			return nil, WithCode(codeNeedAtLeastOneDocument, err)
		}
		return nil, WithCode(CodeGeneric, err)
	}
	tree.FilePath = path
	return tree, nil
}

// decryptTree unwraps the data key and decrypts the tree in place.
func (a *App) decryptTree(ctx context.Context, tree *sops.Tree, b *backends, df *decryptFlags) (*sops.Cipher, []byte, error) {
	c, key, err := sopsfile.DecryptTree(ctx, tree, b.identities(), a.order(df), df.ignoreMAC)
	if err != nil {
		return nil, nil, keyError(err, b)
	}
	return c, key, nil
}

// decryptTreeOnly is decryptTree for commands that do not re-encrypt.
func (a *App) decryptTreeOnly(ctx context.Context, tree *sops.Tree, b *backends, df *decryptFlags) error {
	return keyError(sopsfile.DecryptTreeOnly(ctx, tree, b.identities(), a.order(df), df.ignoreMAC), b)
}

// keyError adds the problems met loading keys to a failure to get the data
// key.
func keyError(err error, b *backends) error {
	if err == nil || CodeFor(err) != CodeCouldNotRetrieveKey {
		return err
	}
	if problems := b.problems(); len(problems) > 0 {
		var sb strings.Builder
		sb.WriteString(err.Error())
		sb.WriteString("\nproblems loading keys:")
		for _, e := range problems {
			sb.WriteString("\n  - " + e.Error())
		}
		return WithCode(CodeCouldNotRetrieveKey, errors.New(sb.String()))
	}
	return err
}

func (a *App) decryptCommand() *cobra.Command {
	var df decryptFlags
	var ff formatFlags
	var of outputFlags
	var extract string
	var recursive bool
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
			files, err := expandPaths(args, recursive)
			if err != nil {
				return err
			}
			var path []any
			if extract != "" {
				if path, err = sops.ParsePath(extract); err != nil {
					return WithCode(codeInvalidTreePathFormat, err)
				}
			}
			lc, err := a.loadConfig()
			if err != nil {
				return err
			}
			storeOpts := a.storeOptions(lc)
			b := a.backends()
			return a.runFiles(cmd.Context(), files, of, func(ctx context.Context, file string) ([]byte, error) {
				in, out, err := ff.formats(file)
				if err != nil {
					return nil, err
				}
				tree, err := a.loadEncrypted(file, in, storeOpts)
				if err != nil {
					return nil, err
				}
				if err := a.decryptTreeOnly(ctx, tree, b, &df); err != nil {
					return nil, err
				}
				store := formats.NewStore(out, storeOpts)
				if path != nil {
					if len(tree.Branches) == 0 {
						return nil, Codef(CodeGeneric, "the file has no documents")
					}
					v, err := tree.Branches[0].Get(path)
					if err != nil {
						return nil, WithCode(CodeGeneric, err)
					}
					res, err := store.EmitValue(v)
					return res, WithCode(codeErrorDumpingTree, err)
				}
				res, err := store.EmitPlainFile(tree.Branches)
				return res, WithCode(codeErrorDumpingTree, err)
			})
		},
	}
	df.register(cmd)
	f := cmd.Flags()
	f.BoolVarP(&of.inPlace, "in-place", "i", false, "write the output back to the file")
	f.StringVar(&of.output, "output", "", "write the output to this file")
	f.StringVar(&ff.inputType, "input-type", "", "input format: yaml, json, dotenv, ini or binary (default: by extension)")
	f.StringVar(&ff.outputType, "output-type", "", "output format (default: the input format)")
	f.StringVar(&ff.filenameOverride, "filename-override", "", "use this file name to pick the format")
	f.StringVar(&extract, "extract", "", `print only the value at this path, e.g. '["data"]["password"]'`)
	f.BoolVarP(&recursive, "recursive", "r", false, "decrypt every file below the given directories")
	return cmd
}
