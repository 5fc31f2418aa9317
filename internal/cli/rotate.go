package cli

import (
	"context"
	"crypto/rand"
	"slices"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sops"
)

func (a *app) rotateCommand() *cobra.Command {
	var df decryptFlags
	var bf batchFlags
	var add, rm keysource.Flags
	g := ruleGuard{recipients: true}
	cmd := &cobra.Command{
		Use:   "rotate [flags] FILE ...",
		Short: "Re-encrypt files with a new data key, optionally adding or removing master keys",
		Example: `  lacre rotate -i secret.enc.yaml
  lacre rotate -i --add-age age1new... --rm-age age1old... secret.enc.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var addKeys, rmKeys []rules.Key
			parse := func() (err error) {
				if addKeys, err = add.RuleKeys(); err != nil {
					return err
				}
				rmKeys, err = rm.RuleKeys()
				return err
			}
			return a.runBatch(cmd.Context(), args, &bf, "rotating", parse, func(ctx context.Context, s *session, file string) ([]byte, error) {
				out, _, err := a.transform(ctx, file, &bf.ff, s, &g, func(ctx context.Context, f *sopsFile) (bool, error) {
					return true, f.rotate(ctx, &df, addKeys, rmKeys)
				})
				return out, err
			})
		},
	}
	df.register(cmd)
	f := cmd.Flags()
	add.Register(f, "add-", "add")
	rm.Register(f, "rm-", "remove")
	refuseHCKMS(f, "add-hckms", "rm-hckms")
	f.StringVar(&add.EncryptionContext, "encryption-context", "", "AWS KMS encryption context for --add-kms keys")
	bf.register(f, "rotate")
	g.register(f)
	f.StringVar(&bf.ff.inputType, "input-type", "", "file format (default: by extension)")
	f.StringVar(&bf.ff.filenameOverride, "filename-override", "", "use this file name to pick the format")
	return cmd
}

// rotate decrypts the file and gives it a new data key, wrapped for its
// master keys less rmKeys plus addKeys (added to the first group).
func (f *sopsFile) rotate(ctx context.Context, df *decryptFlags, addKeys, rmKeys []rules.Key) error {
	if err := f.decrypt(ctx, df); err != nil {
		return err
	}
	b := f.s.keys
	groups, err := b.RecipientsOf(ctx, f.tree.Metadata.KeyGroups, func(s *keys.Stanza) bool {
		return slices.ContainsFunc(rmKeys, func(k rules.Key) bool { return k.Matches(s.Ref()) })
	})
	if err != nil {
		return cliapp.WithCode(cliapp.CodeCannotChangeKeys, err)
	}
	if len(addKeys) > 0 {
		extra, err := b.GroupsFor(ctx, [][]rules.Key{addKeys})
		if err != nil {
			return cliapp.WithCode(cliapp.CodeCannotChangeKeys, err)
		}
		if len(groups) == 0 {
			groups = [][]keys.Recipient{nil}
		}
		groups[0] = append(groups[0], extra[0]...)
	}
	for i, g := range groups {
		if len(g) == 0 {
			return cliapp.Codef(cliapp.CodeCannotChangeKeys, "key group %d would have no master keys left", i)
		}
	}
	dataKey := make([]byte, sops.DataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return err
	}
	if err := f.rewrap(ctx, dataKey, groups, f.tree.Metadata.ShamirThreshold); err != nil {
		return cliapp.WithCode(cliapp.CodeErrorEncryptingTree, err)
	}
	c, err := sops.NewCipher(dataKey)
	if err != nil {
		return err
	}
	f.cipher = c
	return nil
}
