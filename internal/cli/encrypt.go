package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// encryptFlags are the flags that decide what gets encrypted and for whom.
type encryptFlags struct {
	keysource.Flags
	rules     sopsfile.Rules
	threshold int
}

func (ef *encryptFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	ef.Flags.Register(f, "", "encrypt to")
	f.StringVar(&ef.AWSProfile, "aws-profile", "", "AWS profile for --kms keys")
	f.StringVar(&ef.EncryptionContext, "encryption-context", "", "AWS KMS encryption context, key:value,key2:value2")
	f.StringVar(&ef.rules.UnencryptedSuffix, "unencrypted-suffix", "", "leave keys ending with this suffix unencrypted (default \"_unencrypted\")")
	f.StringVar(&ef.rules.EncryptedSuffix, "encrypted-suffix", "", "encrypt only keys ending with this suffix")
	f.StringVar(&ef.rules.UnencryptedRegex, "unencrypted-regex", "", "leave keys matching this regex unencrypted")
	f.StringVar(&ef.rules.EncryptedRegex, "encrypted-regex", "", "encrypt only keys matching this regex")
	f.StringVar(&ef.rules.UnencryptedCommentRegex, "unencrypted-comment-regex", "", "leave values after a comment matching this regex unencrypted")
	f.StringVar(&ef.rules.EncryptedCommentRegex, "encrypted-comment-regex", "", "encrypt only values after a comment matching this regex")
	f.BoolVar(&ef.rules.MACOnlyEncrypted, "mac-only-encrypted", false, "compute the MAC over encrypted values only")
	f.IntVar(&ef.threshold, "shamir-secret-sharing-threshold", 0, "number of key groups needed to decrypt (with several key groups)")
	refuseHCKMS(f, "hckms")
}

// plan resolves the key groups and rules for one file: flags override the
// .sops.yaml creation rule, as in sops.
func (a *app) plan(ctx context.Context, ef *encryptFlags, s *session, file string) ([][]keys.Recipient, int, sopsfile.Rules, error) {
	if err := a.checkHCKMSEnv(); err != nil {
		return nil, 0, ef.rules, err
	}
	kf := ef.Flags
	kf.FromEnv(a.env)
	r := ef.rules
	threshold := ef.threshold
	var groups [][]rules.Key
	if !kf.Empty() {
		g, err := kf.RuleKeys()
		if err != nil {
			return nil, 0, r, err
		}
		groups = [][]rules.Key{g}
	}
	lc := s.lc
	rule, err := lc.rule(file)
	if err != nil {
		return nil, 0, r, cliapp.WithCode(cliapp.CodeGeneric, fmt.Errorf("error loading config: %w", err))
	}
	if rule != nil {
		if groups == nil {
			groups = rule.KeyGroups
			if threshold == 0 {
				threshold = rule.ShamirThreshold
			}
		}
		r = ruleSelection(r, rule)
	}
	if len(groups) == 0 || len(groups[0]) == 0 {
		if lc.cfg == nil || len(lc.cfg.CreationRules) == 0 {
			return nil, 0, r, cliapp.Codef(cliapp.CodeGeneric, "config file not found, or has no creation rules, and no keys provided through command line options")
		}
		return nil, 0, r, cliapp.Codef(cliapp.CodeGeneric, "no master keys: the creation rule for this file has none, and none were given with --age, --pgp, ...")
	}
	if err := r.Validate(); err != nil {
		return nil, 0, r, cliapp.WithCode(cliapp.CodeConflictingParameters, err)
	}
	rg, err := s.keys.GroupsFor(ctx, groups)
	if err != nil {
		return nil, 0, r, err
	}
	return rg, threshold, r, nil
}

func (a *app) encryptCommand() *cobra.Command {
	var ef encryptFlags
	var bf batchFlags
	cmd := &cobra.Command{
		Use:   "encrypt [flags] [FILE|DIR|- ...]",
		Short: "Encrypt files",
		Long: `Encrypt the values of YAML, JSON, dotenv, INI or binary files. Master keys come
from the flags, or from the first matching creation rule of .sops.yaml.

Several files (and directories with -r) are encrypted in one run; with more than
one file, use --in-place. With no file, stdin is read; --filename-override
then names it (its format and creation rule).`,
		Example: `  lacre encrypt --age age1... secret.yaml > secret.enc.yaml
  lacre encrypt -i --encrypted-regex '^(data|stringData)$' secret.yaml
  lacre encrypt -i -r secrets/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ff := &bf.ff
			if len(args) == 0 {
				args = []string{"-"} // stdin, as sops
			}
			return a.runBatch(cmd.Context(), args, &bf, "encrypting", nil, func(ctx context.Context, s *session, path string) ([]byte, error) {
				name := path
				if ff.filenameOverride != "" {
					name = ff.filenameOverride
				} else if path == "-" {
					return nil, cliapp.Codef(cliapp.CodeConflictingParameters, "encrypting from stdin needs --filename-override (to pick the format and the creation rule)")
				}
				in, out, err := ff.formats(path)
				if err != nil {
					return nil, err
				}
				data, err := a.readInput(path)
				if err != nil {
					return nil, err
				}
				return a.encryptData(ctx, data, name, in, out, s, &ef)
			})
		},
	}
	ef.register(cmd)
	f := cmd.Flags()
	bf.register(f, "encrypt")
	f.StringVar(&bf.ff.inputType, "input-type", "", "input format: yaml, json, dotenv, ini or binary (default: by extension)")
	f.StringVar(&bf.ff.filenameOverride, "filename-override", "", "use this file name for the format and the creation rule")
	return cmd
}

func (a *app) encryptData(ctx context.Context, data []byte, name string, in, out formats.Format, s *session, ef *encryptFlags) ([]byte, error) {
	branches, err := formats.NewStore(in, s.storeOpts).LoadPlainFile(data)
	if err != nil {
		switch {
		case errors.Is(err, sops.ErrAlreadyEncrypted):
			return nil, cliapp.WithCode(cliapp.CodeFileAlreadyEncrypted, errors.New("the file is already encrypted"))
		case errors.Is(err, sops.ErrIntegerOutOfRange):
			return nil, cliapp.WithCode(cliapp.CodeErrorEncryptingTree, err)
		}
		// sops exits 2 for every file it cannot parse, a comment-only
		// YAML or an empty JSON file (no document) included.
		return nil, cliapp.WithCode(cliapp.CodeCouldNotReadInputFile, err)
	}
	groups, threshold, r, err := a.plan(ctx, ef, s, name)
	if err != nil {
		return nil, err
	}
	tree := sops.Tree{Branches: branches, FilePath: name}
	if err := a.setSelection(&tree.Metadata, in, r); err != nil {
		return nil, cliapp.WithCode(cliapp.CodeConflictingParameters, err)
	}
	if err := sopsfile.EncryptTree(ctx, &tree, groups, threshold); err != nil {
		// sops exits 1 when a master key (KMS, ...) fails to encrypt the
		// data key, its usual failure here.
		return nil, cliapp.WithCode(cliapp.CodeGeneric, err)
	}
	return emitEncrypted(name, out, s.storeOpts, &tree)
}
