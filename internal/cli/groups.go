package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
)

func (a *app) groupsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "Add or delete key groups of a file",
	}
	var df decryptFlags
	var ff formatFlags
	var kf keysource.Flags
	var file string
	var threshold int
	var inPlace bool
	// The data key goes to every master key the file names: a planted
	// one must match the .sops.yaml rule first (rulecheck.go).
	g := &ruleGuard{recipients: true}
	add := &cobra.Command{
		Use:     "add --file FILE [key flags]",
		Short:   "Add a key group made of the given master keys",
		Long:    "Add a key group made of the given master keys, and print the file (as sops), or write it back with -i.",
		Example: `  lacre groups add -i --file secret.enc.yaml --age age1... --shamir-secret-sharing-threshold 2`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			newKeys, err := kf.RuleKeys()
			if err != nil {
				return err
			}
			if len(newKeys) == 0 {
				return cliapp.Codef(cliapp.CodeGeneric, "give the new group's master keys with --age, --pgp, ...")
			}
			return prefixErr(file, a.changeGroups(cmd.Context(), file, &ff, &df, func(ctx context.Context, b *keysource.Source, groups [][]keys.Recipient) ([][]keys.Recipient, error) {
				g, err := b.GroupsFor(ctx, [][]rules.Key{newKeys})
				if err != nil {
					return nil, err
				}
				return append(groups, g[0]), nil
			}, threshold, inPlace, g))
		},
	}
	kf.Register(add.Flags(), "", "group of")
	add.Flags().StringVar(&kf.AWSProfile, "aws-profile", "", "AWS profile for --kms keys")
	refuseHCKMS(add.Flags(), "hckms")
	add.Flags().StringVar(&kf.EncryptionContext, "encryption-context", "", "AWS KMS encryption context")
	add.Flags().IntVar(&threshold, "shamir-secret-sharing-threshold", 0, "new Shamir threshold")
	del := &cobra.Command{
		Use:     "delete --file FILE INDEX",
		Short:   "Delete the key group at INDEX (from 0)",
		Long:    "Delete the key group at INDEX (from 0), and print the file (as sops), or write it back with -i.",
		Example: `  lacre groups delete -i --file secret.enc.yaml 1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := strconv.Atoi(args[0])
			if err != nil || idx < 0 {
				return cliapp.Codef(cliapp.CodeGeneric, "INDEX must be a group number from 0")
			}
			return prefixErr(file, a.changeGroups(cmd.Context(), file, &ff, &df, func(ctx context.Context, b *keysource.Source, groups [][]keys.Recipient) ([][]keys.Recipient, error) {
				if idx >= len(groups) {
					return nil, fmt.Errorf("the file has %d key groups", len(groups))
				}
				if len(groups) == 1 {
					return nil, errors.New("cannot delete the only key group")
				}
				return slices.Delete(groups, idx, idx+1), nil
			}, threshold, inPlace, g))
		},
	}
	del.Flags().IntVar(&threshold, "shamir-secret-sharing-threshold", 0, "new Shamir threshold")
	for _, c := range []*cobra.Command{add, del} {
		c.Flags().StringVarP(&file, "file", "f", "", "the encrypted file")
		c.Flags().BoolVarP(&inPlace, "in-place", "i", false, "write the file back instead of printing it")
		_ = c.MarkFlagRequired("file")
		c.Flags().StringVar(&ff.inputType, "input-type", "", "file format (default: by extension)")
		df.register(c)
		g.register(c.Flags())
	}
	cmd.AddCommand(add, del)
	return cmd
}

// changeGroups changes the key groups of file with change, keeping its
// data key, and prints the result or, inPlace, writes it back. threshold 0
// keeps the file's, within the new number of groups. g compares the file
// with its creation rule first.
func (a *app) changeGroups(ctx context.Context, file string, ff *formatFlags, df *decryptFlags, change func(context.Context, *keysource.Source, [][]keys.Recipient) ([][]keys.Recipient, error), threshold int, inPlace bool, g *ruleGuard) error {
	out, _, err := a.transform(ctx, file, ff, nil, g, func(ctx context.Context, f *sopsFile) (bool, error) {
		dataKey, err := f.dataKey(ctx, df)
		if err != nil {
			return false, err
		}
		b, m := f.s.keys, f.tree.Metadata
		groups, err := b.RecipientsOf(ctx, m.KeyGroups, nil)
		if err != nil {
			return false, cliapp.WithCode(cliapp.CodeCannotChangeKeys, err)
		}
		groups, err = change(ctx, b, groups)
		if err != nil {
			return false, cliapp.WithCode(cliapp.CodeCannotChangeKeys, err)
		}
		if threshold == 0 && len(groups) > 1 {
			threshold = min(max(m.ShamirThreshold, 2), len(groups))
			if m.ShamirThreshold == 0 {
				threshold = len(groups)
			}
		}
		if err := f.rewrap(ctx, dataKey, groups, threshold); err != nil {
			return false, cliapp.WithCode(cliapp.CodeCannotChangeKeys, err)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	return a.emit(file, outputFlags{inPlace: inPlace}, out)
}
