package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
)

// recipientsOf rebuilds recipients for the stanzas of key groups, leaving out
// the stanzas for which drop returns true.
func (b *backends) recipientsOf(ctx context.Context, groups []keys.Group, drop func(*keys.Stanza) bool) ([][]keys.Recipient, error) {
	var out [][]keys.Recipient
	for _, g := range groups {
		var rg []keys.Recipient
		for _, s := range g {
			if drop != nil && drop(s) {
				continue
			}
			r, err := b.recipientFromStanza(ctx, s)
			if err != nil {
				return nil, fmt.Errorf("%s key %q: %w", s.Type, s.ID(), err)
			}
			rg = append(rg, r)
		}
		out = append(out, rg)
	}
	return out, nil
}

func (a *App) rotateCommand() *cobra.Command {
	var df decryptFlags
	var ff formatFlags
	var of outputFlags
	var add, rm keyFlags
	var recursive bool
	cmd := &cobra.Command{
		Use:   "rotate [flags] FILE ...",
		Short: "Re-encrypt files with a new data key, optionally adding or removing master keys",
		Example: `  lacre rotate -i secret.enc.yaml
  lacre rotate -i --add-age age1new... --rm-age age1old... secret.enc.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := expandPaths(args, recursive)
			if err != nil {
				return err
			}
			if len(files) > 1 && !of.inPlace {
				return Codef(codeConflictingParameters, "rotating several files needs --in-place")
			}
			addKeys, err := add.ruleKeys()
			if err != nil {
				return err
			}
			rmKeys, err := rm.ruleKeys()
			if err != nil {
				return err
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
				if _, _, err := a.decryptTree(ctx, tree, b, &df); err != nil {
					return nil, err
				}
				groups, err := b.recipientsOf(ctx, tree.Metadata.KeyGroups, func(s *keys.Stanza) bool {
					return slices.ContainsFunc(rmKeys, func(k rules.Key) bool { return k.Matches(s.Ref()) })
				})
				if err != nil {
					return nil, WithCode(codeCannotChangeKeys, err)
				}
				if len(addKeys) > 0 {
					extra, err := b.groupsFor(ctx, [][]rules.Key{addKeys})
					if err != nil {
						return nil, WithCode(codeCannotChangeKeys, err)
					}
					if len(groups) == 0 {
						groups = [][]keys.Recipient{nil}
					}
					groups[0] = append(groups[0], extra[0]...)
				}
				for i, g := range groups {
					if len(g) == 0 {
						return nil, Codef(codeCannotChangeKeys, "key group %d would have no master keys left", i)
					}
				}
				dataKey := make([]byte, sops.DataKeySize)
				if _, err := rand.Read(dataKey); err != nil {
					return nil, err
				}
				kg, th, err := keys.WrapGroups(ctx, dataKey, groups, tree.Metadata.ShamirThreshold)
				if err != nil {
					return nil, WithCode(codeErrorEncryptingTree, err)
				}
				tree.Metadata.KeyGroups, tree.Metadata.ShamirThreshold = kg, th
				c, err := sops.NewCipher(dataKey)
				if err != nil {
					return nil, err
				}
				if err := tree.Encrypt(c); err != nil {
					return nil, WithCode(codeErrorEncryptingTree, err)
				}
				res, err := formats.NewStore(out, storeOpts).EmitEncryptedFile(*tree)
				return res, WithCode(codeErrorDumpingTree, err)
			})
		},
	}
	df.register(cmd)
	f := cmd.Flags()
	add.register(f, "add-", "add")
	rm.register(f, "rm-", "remove")
	f.StringVar(&add.encryptionContext, "encryption-context", "", "AWS KMS encryption context for --add-kms keys")
	f.BoolVarP(&of.inPlace, "in-place", "i", false, "write the output back to the file")
	f.StringVar(&of.output, "output", "", "write the output to this file")
	f.StringVar(&ff.inputType, "input-type", "", "file format (default: by extension)")
	f.StringVar(&ff.outputType, "output-type", "", "output format (default: the input format)")
	f.BoolVarP(&recursive, "recursive", "r", false, "rotate every file below the given directories")
	return cmd
}

// GroupDiff describes how a file's key groups differ from the wanted ones.
// Keys compare by keyref ID without the Azure key version (the file records
// the version it resolved; a rule usually names none).
func GroupDiff(have []keys.Group, haveThreshold int, want [][]rules.Key, wantThreshold int) []string {
	var lines []string
	n := max(len(have), len(want))
	for i := 0; i < n; i++ {
		var h, w []string
		if i < len(have) {
			for _, s := range have[i] {
				h = append(h, s.Type+" "+s.Ref().Unversioned().ID())
			}
		}
		if i < len(want) {
			for _, k := range want[i] {
				w = append(w, k.Type+" "+k.Unversioned().ID())
			}
		}
		for _, x := range w {
			if !slices.Contains(h, x) {
				lines = append(lines, fmt.Sprintf("group %d: +%s", i, x))
			}
		}
		for _, x := range h {
			if !slices.Contains(w, x) {
				lines = append(lines, fmt.Sprintf("group %d: -%s", i, x))
			}
		}
	}
	if len(want) > 1 {
		wt := wantThreshold
		if wt == 0 {
			wt = len(want)
		}
		if wt != haveThreshold {
			lines = append(lines, fmt.Sprintf("shamir threshold: %d -> %d", haveThreshold, wt))
		}
	}
	return lines
}

func (a *App) updatekeysCommand() *cobra.Command {
	var df decryptFlags
	var ff formatFlags
	var yes, check, recursive bool
	cmd := &cobra.Command{
		Use:   "updatekeys [flags] FILE|DIR ...",
		Short: "Make files' master keys match .sops.yaml, keeping their data keys",
		Long: `Re-wrap each file's data key for the master keys of its .sops.yaml creation rule.
Values, MAC and lastmodified are unchanged. With --check nothing is written: the
command exits 1 when any file's keys differ from .sops.yaml (for CI).`,
		Example: `  lacre updatekeys -y secrets/*.yaml
  lacre updatekeys --check -r .`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := expandPaths(args, recursive)
			if err != nil {
				return err
			}
			lc, err := a.loadConfig()
			if err != nil {
				return err
			}
			if lc.cfg == nil {
				return Codef(CodeGeneric, "no .sops.yaml found: updatekeys syncs files with its creation rules")
			}
			storeOpts := a.storeOptions(lc)
			b := a.backends()
			var failed error
			stale := 0
			for _, file := range files {
				err := a.updateKeys(cmd.Context(), file, lc, storeOpts, b, &ff, &df, yes, check, &stale)
				if err != nil {
					fmt.Fprintf(a.Stderr, "lacre: error: %s\n", prefixErr(file, err))
					if failed == nil {
						failed = err
					}
				}
			}
			if failed != nil {
				return SilentExit(CodeFor(failed))
			}
			if check && stale > 0 {
				return Codef(CodeGeneric, "%d file(s) have master keys that differ from .sops.yaml", stale)
			}
			return nil
		},
	}
	df.register(cmd)
	f := cmd.Flags()
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&check, "check", false, "only report files whose keys differ from .sops.yaml; exit 1 if any")
	f.BoolVarP(&recursive, "recursive", "r", false, "process every file below the given directories")
	f.StringVar(&ff.inputType, "input-type", "", "file format (default: by extension)")
	return cmd
}

func (a *App) updateKeys(ctx context.Context, file string, lc *loadedConfig, storeOpts formats.Options, b *backends, ff *formatFlags, df *decryptFlags, yes, check bool, stale *int) error {
	in, _, err := ff.formats(file)
	if err != nil {
		return err
	}
	tree, err := a.loadEncrypted(file, in, storeOpts)
	if err != nil {
		return err
	}
	rule, err := lc.rule(file)
	if err != nil {
		return WithCode(CodeGeneric, fmt.Errorf("error loading config: %w", err))
	}
	diff := GroupDiff(tree.Metadata.KeyGroups, tree.Metadata.ShamirThreshold, rule.KeyGroups, rule.ShamirThreshold)
	if len(diff) == 0 {
		fmt.Fprintf(a.Stderr, "%s: already up to date\n", file)
		return nil
	}
	*stale++
	fmt.Fprintf(a.Stderr, "%s: key changes:\n", file)
	for _, l := range diff {
		fmt.Fprintf(a.Stderr, "  %s\n", l)
	}
	if check {
		return nil
	}
	if !yes {
		if !a.interactive() {
			return Codef(CodeGeneric, "not a terminal: pass -y to apply the changes")
		}
		fmt.Fprint(a.Stderr, "Apply these changes? [y/N] ")
		line, _ := bufio.NewReader(a.Stdin).ReadString('\n')
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y") {
			fmt.Fprintf(a.Stderr, "%s: skipped\n", file)
			return nil
		}
	}
	dataKey, err := b.dataKey(ctx, tree, a.order(df))
	if err != nil {
		return err
	}
	groups, err := b.groupsFor(ctx, rule.KeyGroups)
	if err != nil {
		return WithCode(codeCannotChangeKeys, err)
	}
	kg, th, err := keys.WrapGroups(ctx, dataKey, groups, rule.ShamirThreshold)
	if err != nil {
		return WithCode(codeCannotChangeKeys, err)
	}
	tree.Metadata.KeyGroups, tree.Metadata.ShamirThreshold = kg, th
	out, err := formats.NewStore(in, storeOpts).EmitEncryptedFile(*tree)
	if err != nil {
		return WithCode(codeErrorDumpingTree, err)
	}
	if err := writeFileAtomic(file, out); err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "%s: updated\n", file)
	return nil
}

// dataKey unwraps a file's data key without decrypting its values.
func (b *backends) dataKey(ctx context.Context, tree *sops.Tree, order []string) ([]byte, error) {
	k, err := keys.UnwrapGroups(ctx, tree.Metadata.KeyGroups, tree.Metadata.ShamirThreshold, b.identities(), order)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (a *App) keysCommand() *cobra.Command {
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
			lc, err := a.loadConfig()
			if err != nil {
				return err
			}
			storeOpts := a.storeOptions(lc)
			b := a.backends()
			ids := b.identities()
			ctx := cmd.Context()
			for _, file := range files {
				in, _, err := ff.formats(file)
				if err != nil {
					return err
				}
				tree, err := a.loadEncrypted(file, in, storeOpts)
				if err != nil {
					return prefixErr(file, err)
				}
				m := tree.Metadata
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

func (a *App) groupsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "Add or delete key groups of a file",
	}
	var df decryptFlags
	var ff formatFlags
	var kf keyFlags
	var file string
	var threshold int
	add := &cobra.Command{
		Use:     "add --file FILE [key flags]",
		Short:   "Add a key group made of the given master keys",
		Example: `  lacre groups add --file secret.enc.yaml --age age1... --shamir-secret-sharing-threshold 2`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			newKeys, err := kf.ruleKeys()
			if err != nil {
				return err
			}
			if len(newKeys) == 0 {
				return Codef(CodeGeneric, "give the new group's master keys with --age, --pgp, ...")
			}
			return prefixErr(file, a.changeGroups(cmd.Context(), file, &ff, &df, func(ctx context.Context, b *backends, groups [][]keys.Recipient) ([][]keys.Recipient, error) {
				g, err := b.groupsFor(ctx, [][]rules.Key{newKeys})
				if err != nil {
					return nil, err
				}
				return append(groups, g[0]), nil
			}, threshold))
		},
	}
	kf.register(add.Flags(), "", "group of")
	add.Flags().StringVar(&kf.encryptionContext, "encryption-context", "", "AWS KMS encryption context")
	add.Flags().IntVar(&threshold, "shamir-secret-sharing-threshold", 0, "new Shamir threshold")
	del := &cobra.Command{
		Use:     "delete --file FILE INDEX",
		Short:   "Delete the key group at INDEX (from 0)",
		Example: `  lacre groups delete --file secret.enc.yaml 1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := strconv.Atoi(args[0])
			if err != nil || idx < 0 {
				return Codef(CodeGeneric, "INDEX must be a group number from 0")
			}
			return prefixErr(file, a.changeGroups(cmd.Context(), file, &ff, &df, func(ctx context.Context, b *backends, groups [][]keys.Recipient) ([][]keys.Recipient, error) {
				if idx >= len(groups) {
					return nil, fmt.Errorf("the file has %d key groups", len(groups))
				}
				if len(groups) == 1 {
					return nil, errors.New("cannot delete the only key group")
				}
				return slices.Delete(groups, idx, idx+1), nil
			}, threshold))
		},
	}
	del.Flags().IntVar(&threshold, "shamir-secret-sharing-threshold", 0, "new Shamir threshold")
	for _, c := range []*cobra.Command{add, del} {
		c.Flags().StringVar(&file, "file", "", "the encrypted file")
		_ = c.MarkFlagRequired("file")
		c.Flags().StringVar(&ff.inputType, "input-type", "", "file format (default: by extension)")
		df.register(c)
	}
	cmd.AddCommand(add, del)
	return cmd
}

func (a *App) changeGroups(ctx context.Context, file string, ff *formatFlags, df *decryptFlags, change func(context.Context, *backends, [][]keys.Recipient) ([][]keys.Recipient, error), threshold int) error {
	in, _, err := ff.formats(file)
	if err != nil {
		return err
	}
	lc, err := a.loadConfig()
	if err != nil {
		return err
	}
	storeOpts := a.storeOptions(lc)
	tree, err := a.loadEncrypted(file, in, storeOpts)
	if err != nil {
		return err
	}
	b := a.backends()
	dataKey, err := b.dataKey(ctx, tree, a.order(df))
	if err != nil {
		return err
	}
	groups, err := b.recipientsOf(ctx, tree.Metadata.KeyGroups, nil)
	if err != nil {
		return WithCode(codeCannotChangeKeys, err)
	}
	groups, err = change(ctx, b, groups)
	if err != nil {
		return WithCode(codeCannotChangeKeys, err)
	}
	if threshold == 0 && len(groups) > 1 {
		threshold = min(max(tree.Metadata.ShamirThreshold, 2), len(groups))
		if tree.Metadata.ShamirThreshold == 0 {
			threshold = len(groups)
		}
	}
	kg, th, err := keys.WrapGroups(ctx, dataKey, groups, threshold)
	if err != nil {
		return WithCode(codeCannotChangeKeys, err)
	}
	tree.Metadata.KeyGroups, tree.Metadata.ShamirThreshold = kg, th
	out, err := formats.NewStore(in, storeOpts).EmitEncryptedFile(*tree)
	if err != nil {
		return WithCode(codeErrorDumpingTree, err)
	}
	return writeFileAtomic(file, out)
}
