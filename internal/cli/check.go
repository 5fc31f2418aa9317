package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/internal/kubesecret"
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// checkMaxFileSize bounds the files check secrets reads; a larger one is
// reported as a problem (not checked), never skipped in silence.
const checkMaxFileSize = 16 << 20

func (a *app) checkCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "check", Aliases: []string{"lint"}, Short: "Check a repository for secrets problems"}
	sec := &cobra.Command{
		Use:   "secrets [DIR|FILE ...]",
		Short: "Fail on unencrypted Secrets and files whose keys differ from .sops.yaml",
		Long: `Walk the directories (default ".", .git skipped) and report, one line per problem
with the file's path:

  - a Kubernetes Secret manifest (kind: Secret in any YAML or JSON document of
    any file, kind: List items included) that is not SOPS-encrypted, or that has
    a data or stringData value in clear;
  - a file matched by a .sops.yaml creation rule's path_regex that is not
    SOPS-encrypted;
  - an encrypted file whose master keys differ from its creation rule's (as
    lacre updatekeys --check), or whose selection rules do (set, edit,
    rotate and updatekeys refuse it without --force);
  - a value under data or stringData of an encrypted Secret whose ENC type
    is not str (the type is not authenticated; Secret values are strings);
  - a file larger than 16 MiB (not checked).

It reads one file at a time: a Secret that a kustomization builds from other
objects (a patch that changes a kind) is refused by the controller's
--require-encrypted-secrets, which checks the built objects.

No keys are needed and nothing is decrypted. The .sops.yaml is --config,
$SOPS_CONFIG, or found by walking up from each argument. Exits 1 when there is
a problem, else prints "ok: N files checked". Files given as arguments are
checked even when no rule matches them, which suits pre-commit hooks.`,
		Example: `  lacre check secrets
  lacre check secrets clusters/ apps/
  lacre lint secrets $(git diff --cached --name-only)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			return a.checkSecrets(args)
		},
	}
	cmd.AddCommand(sec)
	return cmd
}

// checkConfig is one .sops.yaml and the directory its rules are relative to.
type checkConfig struct {
	cfg  *rules.Config
	path string
}

func (a *app) checkSecrets(args []string) error {
	configs := map[string]*checkConfig{}
	findConfig := func(dir string) (*checkConfig, error) {
		p := a.ConfigPath()
		if p == "" {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return nil, err
			}
			p, err = rules.Find(abs)
			if errors.Is(err, rules.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
		}
		p, _ = filepath.Abs(p)
		if c, ok := configs[p]; ok {
			return c, nil
		}
		data, err := keysource.ReadBounded(p, keysource.MaxKeyFileSize)
		if err != nil {
			return nil, err
		}
		cfg, err := rules.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		c := &checkConfig{cfg: cfg, path: p}
		configs[p] = c
		return c, nil
	}

	problems, checked := 0, 0
	report := func(file, format string, args ...any) {
		problems++
		fmt.Fprintf(a.Stdout, "%s: %s\n", file, fmt.Sprintf(format, args...))
	}
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return cliapp.Codef(cliapp.CodeCouldNotReadInputFile, "%v", err)
		}
		dir := arg
		if !st.IsDir() {
			dir = filepath.Dir(arg)
		}
		cc, err := findConfig(dir)
		if err != nil {
			return cliapp.WithCode(cliapp.CodeGeneric, err)
		}
		if cc == nil {
			report(arg, "no .sops.yaml found (searched from %s upward): creation rules and recipients cannot be checked", dir)
		}
		var files []string
		if st.IsDir() {
			err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() {
					if d.Name() == ".git" {
						return filepath.SkipDir
					}
					return nil
				}
				if d.Type().IsRegular() {
					files = append(files, p)
				}
				return nil
			})
			if err != nil {
				return cliapp.WithCode(cliapp.CodeCouldNotReadInputFile, err)
			}
		} else {
			files = []string{arg}
		}
		sort.Strings(files)
		for _, f := range files {
			if cc != nil {
				if abs, _ := filepath.Abs(f); abs == cc.path {
					continue
				}
			}
			if filepath.Base(f) == ".sops.yaml" {
				continue
			}
			checked++
			a.checkFile(f, cc, report)
		}
	}
	if problems > 0 {
		return cliapp.Codef(cliapp.CodeGeneric, "%d problem(s) found in %d file(s) checked", problems, checked)
	}
	fmt.Fprintf(a.Stdout, "ok: %d files checked\n", checked)
	return nil
}

// checkFile reports the problems of one file.
func (a *app) checkFile(file string, cc *checkConfig, report func(file, format string, args ...any)) {
	info, err := os.Stat(file)
	if err != nil {
		report(file, "%v", err)
		return
	}
	if info.Size() > checkMaxFileSize {
		report(file, "larger than %d MiB: not checked", checkMaxFileSize>>20)
		return
	}
	data, err := os.ReadFile(file)
	if err != nil {
		report(file, "%v", err)
		return
	}
	tree, encErr := loadSopsMetadata(file, data)
	var rule *rules.CreationRule
	ruleErr := error(nil)
	if cc != nil {
		abs, _ := filepath.Abs(file)
		rule, ruleErr = cc.cfg.Rule(abs, filepath.Dir(cc.path))
	}
	if kubesecret.Plain(file, data) {
		report(file, "Kubernetes Secret is not SOPS-encrypted")
		return
	}
	if tree == nil {
		if encErr != nil {
			report(file, "looks SOPS-encrypted but its metadata cannot be read: %v", encErr)
			return
		}
		if rule != nil && rule.PathRegex != nil {
			report(file, "matches creation rule path_regex %q but is not SOPS-encrypted", rule.PathRegex.String())
		}
		return
	}
	if types := secretTypeProblems(tree); len(types) > 0 {
		report(file, "Secret values encrypted as a type other than str (Kubernetes Secret values are strings; the ENC type field is not authenticated, so it may have been edited): %s", joinDiff(types))
	}
	if cc == nil || ruleErr != nil || rule == nil {
		a.Infof("%s: encrypted, no creation rule to compare its keys with", file)
		return
	}
	diff := GroupDiff(tree.Metadata.KeyGroups, tree.Metadata.ShamirThreshold, rule.KeyGroups, rule.ShamirThreshold)
	if len(diff) > 0 {
		report(file, "master keys differ from %s (run lacre updatekeys): %s", filepath.Base(cc.path), joinDiff(diff))
	}
	if sel := tree.Metadata.Selection.Diff(rule.Selection); len(sel) > 0 {
		report(file, "selection rules differ from %s (later values could be stored in clear; set, edit, rotate and updatekeys refuse the file without --force): %s", filepath.Base(cc.path), joinDiff(sel))
	}
}

func joinDiff(lines []string) string { return strings.Join(lines, "; ") }

// loadSopsMetadata returns the parsed file when it is SOPS-encrypted; nil
// and nil when it is not; nil and an error when it carries SOPS markers
// but does not parse.
func loadSopsMetadata(file string, data []byte) (*sops.Tree, error) {
	f, enc := formats.Sniff(file, data)
	if !enc {
		return nil, nil
	}
	tree, err := sopsfile.Load(data, f, formats.Options{})
	if err != nil && f == formats.Binary {
		tree, err = sopsfile.Load(data, formats.JSON, formats.Options{})
	}
	if err != nil {
		return nil, err
	}
	return tree, nil
}
