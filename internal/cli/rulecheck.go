package cli

// Before set, edit, rotate, updatekeys and groups add/delete change a
// file, its metadata is compared with the .sops.yaml creation rule that
// matches it. SOPS does not
// authenticate the selection rules or the master keys of a file: whoever
// can edit it can narrow encrypted_regex (later values are stored in clear)
// or plant a recipient (rotate and groups wrap the data key for it). The one
// comparison is RuleMismatch; selection rules are sops.Selection's, master
// keys GroupDiff's.

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// setSelection sets a new file's selection rules (sopsfile.SetSelection),
// warning about those a binary file ignores, as sops does.
func (a *app) setSelection(m *sops.Metadata, in formats.Format, r sopsfile.Rules) error {
	ignored, err := sopsfile.SetSelection(m, in, r)
	for _, name := range ignored {
		fmt.Fprintf(a.Stderr, "lacre: warning: %s is ignored for binary files: their one value is always encrypted\n", name)
	}
	return err
}

// ruleGuard is what a command that changes a file compares with its
// creation rule before changing it, and --force.
type ruleGuard struct {
	force bool
	// recipients compares the master keys too. updatekeys leaves them out:
	// making them match the rule is its job.
	recipients bool
}

func (g *ruleGuard) register(f *pflag.FlagSet) {
	what := "selection rules"
	if g.recipients {
		what += " or master keys"
	}
	f.BoolVar(&g.force, "force", false, "proceed even when the file's "+what+" differ from its .sops.yaml creation rule")
}

// RuleMismatch lists how a file's metadata differs from its creation rule:
// the selection rules (sops.Selection.Diff) and, with recipients, the
// master keys (GroupDiff). Empty when they match.
func RuleMismatch(m *sops.Metadata, rule *rules.CreationRule, recipients bool) []string {
	lines := m.Selection.Diff(rule.Selection)
	if recipients {
		lines = append(lines, GroupDiff(m.KeyGroups, m.ShamirThreshold, rule.KeyGroups, rule.ShamirThreshold)...)
	}
	return lines
}

// check refuses, unless g.force, a file whose metadata differs from the
// .sops.yaml creation rule that matches it. A file no rule matches (or
// with no .sops.yaml) is not checked. g nil checks nothing.
func (g *ruleGuard) check(f *sopsFile) error {
	if g == nil || f.s.lc == nil {
		return nil
	}
	rule, err := f.s.lc.rule(f.path)
	if errors.Is(err, rules.ErrNoMatchingRule) || rule == nil {
		return nil
	}
	if err != nil {
		return cliapp.WithCode(cliapp.CodeGeneric, fmt.Errorf("error loading config: %w", err))
	}
	diff := RuleMismatch(&f.tree.Metadata, rule, g.recipients)
	if f.in == formats.Binary {
		// A binary file has no selection rules (sopsfile.SetSelection).
		diff = nil
		if g.recipients {
			m := &f.tree.Metadata
			diff = GroupDiff(m.KeyGroups, m.ShamirThreshold, rule.KeyGroups, rule.ShamirThreshold)
		}
	}
	if len(diff) == 0 {
		return nil
	}
	if g.force {
		fmt.Fprintf(f.a.Stderr, "lacre: warning: %s: differs from its %s creation rule (--force): %s\n", f.path, filepath.Base(f.s.lc.path), joinDiff(diff))
		return nil
	}
	return cliapp.Codef(cliapp.CodeFileDiffersFromRule,
		"the file's metadata differs from its %s creation rule, so new values could be stored in clear or the data key go to a key the rule does not name: %s (check the file's history; lacre updatekeys fixes master keys; --force proceeds)",
		filepath.Base(f.s.lc.path), joinDiff(diff))
}
