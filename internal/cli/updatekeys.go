package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

func (a *app) updatekeysCommand() *cobra.Command {
	var df decryptFlags
	var ff formatFlags
	var yes, check, recursive bool
	var g ruleGuard // selection rules only: updatekeys makes the master keys match
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
				return cliapp.Codef(cliapp.CodeGeneric, "no .sops.yaml found: updatekeys syncs files with its creation rules")
			}
			s := &session{lc: lc, storeOpts: a.storeOptions(lc), keys: a.Keys()}
			var failed error
			stale := 0
			for _, file := range files {
				err := a.updateKeys(cmd.Context(), file, s, &ff, &df, &g, yes, check, &stale)
				if err != nil {
					fmt.Fprintf(a.Stderr, "lacre: error: %s\n", prefixErr(file, err))
					if failed == nil {
						failed = err
					}
				}
			}
			if failed != nil {
				return cliapp.SilentExit(cliapp.CodeFor(failed))
			}
			if check && stale > 0 {
				return cliapp.Codef(cliapp.CodeGeneric, "%d file(s) have master keys that differ from .sops.yaml", stale)
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
	g.register(f)
	return cmd
}

// updateKeys re-wraps one file's data key for the master keys of its
// creation rule, after showing the differences and, without yes, asking.
// With check it only counts the file in stale when they differ.
func (a *app) updateKeys(ctx context.Context, file string, s *session, ff *formatFlags, df *decryptFlags, g *ruleGuard, yes, check bool, stale *int) error {
	wrote, err := a.rewrite(ctx, file, ff, s, g, func(ctx context.Context, f *sopsFile) (bool, error) {
		tree := f.tree
		rule, err := s.lc.rule(file)
		if err != nil {
			return false, cliapp.WithCode(cliapp.CodeGeneric, fmt.Errorf("error loading config: %w", err))
		}
		diff := GroupDiff(tree.Metadata.KeyGroups, tree.Metadata.ShamirThreshold, rule.KeyGroups, rule.ShamirThreshold)
		if len(diff) == 0 {
			fmt.Fprintf(a.Stderr, "%s: already up to date\n", file)
			return false, nil
		}
		*stale++
		fmt.Fprintf(a.Stderr, "%s: key changes:\n", file)
		for _, l := range diff {
			fmt.Fprintf(a.Stderr, "  %s\n", l)
		}
		if check {
			return false, nil
		}
		if ok, err := a.confirm(file, yes); !ok || err != nil {
			return false, err
		}
		dataKey, err := f.dataKey(ctx, df)
		if err != nil {
			return false, err
		}
		groups, err := s.keys.GroupsFor(ctx, rule.KeyGroups)
		if err != nil {
			return false, cliapp.WithCode(cliapp.CodeCannotChangeKeys, err)
		}
		if err := f.rewrap(ctx, dataKey, groups, rule.ShamirThreshold); err != nil {
			return false, cliapp.WithCode(cliapp.CodeCannotChangeKeys, err)
		}
		return true, nil
	})
	if err != nil || !wrote {
		return err
	}
	fmt.Fprintf(a.Stderr, "%s: updated\n", file)
	return nil
}

// confirm asks whether to apply the changes shown for file, unless yes.
// Like sops, it reads the answer from stdin, a terminal or not ("echo y |
// lacre updatekeys FILE"), asking again until it is y or n.
func (a *app) confirm(file string, yes bool) (bool, error) {
	if yes {
		return true, nil
	}
	if a.answers == nil {
		a.answers = bufio.NewReader(io.LimitReader(a.Stdin, 1<<20))
	}
	for {
		fmt.Fprint(a.Stderr, "Is this okay? (y/n): ")
		line, err := a.answers.ReadString('\n')
		switch strings.TrimSpace(line) {
		case "y":
			return true, nil
		case "n":
			fmt.Fprintf(a.Stderr, "%s: left unchanged\n", file)
			return false, nil
		}
		if err != nil {
			return false, cliapp.Codef(cliapp.CodeGeneric, "no answer on stdin (pass -y to apply the changes without asking)")
		}
	}
}
