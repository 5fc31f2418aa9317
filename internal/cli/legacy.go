package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// sops's legacy forms: the flags of sops's root command ("sops -d FILE",
// "sops -e -i FILE", "sops -r --add-age ... FILE", "sops --set 'PATH
// VALUE' FILE") and "sops FILE", which edits FILE (creating it from an
// example when missing). lacre turns each into its subcommand, with the
// flags the subcommand has, and runs that: one implementation per command.

// legacyModes are the root flags that pick a subcommand.
var legacyModes = []struct{ flag, command string }{
	{"encrypt", "encrypt"},
	{"decrypt", "decrypt"},
	{"rotate", "rotate"},
	{"set", "set"},
}

// legacyDropped are root flags that pick the mode, or that lacre has no use
// for: sops's version checks (lacre never checks for updates).
var legacyDropped = map[string]bool{
	"encrypt": true, "decrypt": true, "rotate": true, "set": true,
	"disable-version-check": true, "check-for-updates": true,
}

// legacyRoot adds sops's root flags to root and makes it run the legacy
// forms. Like sops, flags must come before the file.
func (a *app) legacyRoot(root *cobra.Command) {
	f := root.Flags()
	f.SetInterspersed(false)
	f.BoolP("decrypt", "d", false, "sops's legacy form of 'decrypt'")
	f.BoolP("encrypt", "e", false, "sops's legacy form of 'encrypt'")
	f.BoolP("rotate", "r", false, "sops's legacy form of 'rotate'")
	f.String("set", "", "sops's legacy form of 'set': --set 'PATH VALUE' FILE")
	f.BoolP("show-master-keys", "s", false, "edit: show the sops metadata in the editor")
	f.BoolP("in-place", "i", false, "write the output back to the file")
	f.Bool("disable-version-check", false, "accepted for sops; lacre never checks for updates")
	f.Bool("check-for-updates", false, "accepted for sops; lacre never checks for updates")
	for _, b := range []string{"ignore-mac", "mac-only-encrypted"} {
		f.Bool(b, false, "see the subcommands")
	}
	short := map[string]string{"kms": "k", "pgp": "p", "age": "a"}
	for _, k := range []string{"kms", "gcp-kms", "hckms", "azure-kv", "hc-vault-transit", "pgp", "age"} {
		f.StringP(k, short[k], "", "see the subcommands")
		f.String("add-"+k, "", "rotate: see 'rotate --help'")
		f.String("rm-"+k, "", "rotate: see 'rotate --help'")
	}
	for _, s := range []string{"aws-profile", "extract", "input-type", "output-type", "unencrypted-suffix",
		"encrypted-suffix", "unencrypted-regex", "encrypted-regex", "unencrypted-comment-regex",
		"encrypted-comment-regex", "encryption-context", "shamir-secret-sharing-threshold", "output",
		"filename-override", "decryption-order"} {
		f.String(s, "", "see the subcommands")
	}
	f.VisitAll(func(fl *pflag.Flag) {
		if !root.PersistentFlags().HasFlags() || root.PersistentFlags().Lookup(fl.Name) == nil {
			fl.Hidden = true // listed in docs/cli.md, not in "lacre --help"
		}
	})
	root.Long += `

sops's legacy forms work too, flags before the file: lacre FILE (edit, creating
FILE when missing), lacre -d FILE, lacre -e [-i] FILE, lacre -r [--add-age ...] FILE,
lacre --set 'PATH VALUE' FILE, lacre -s FILE (edit with the metadata shown).`
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 && cmd.Flags().NFlag() == 0 {
			return cmd.Help()
		}
		next, err := legacyArgs(cmd, args)
		if err != nil {
			return err
		}
		return &cliapp.Rerun{Args: next}
	}
}

// legacyArgs turns a legacy command line into its subcommand's.
func legacyArgs(root *cobra.Command, args []string) ([]string, error) {
	f := root.Flags()
	mode := "edit"
	n := 0
	for _, m := range legacyModes {
		if f.Changed(m.flag) && (m.flag == "set" || flagBool(f, m.flag)) {
			mode, n = m.command, n+1
		}
	}
	if n > 1 {
		return nil, cliapp.Codef(cliapp.CodeConflictingParameters, "give only one of --encrypt, --decrypt, --rotate and --set")
	}
	if len(args) == 0 {
		return nil, cliapp.Codef(cliapp.CodeNoFileSpecified, "no file specified")
	}
	if len(args) > 1 {
		msg := "more than one file given: only the first is used, as sops does; flags must come before the file"
		for _, x := range args[1:] {
			if strings.HasPrefix(x, "-") {
				msg += fmt.Sprintf(" (%q looks like a flag)", x)
				break
			}
		}
		fmt.Fprintf(root.ErrOrStderr(), "lacre: warning: %s\n", msg)
	}
	file := args[0]
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		if mode != "edit" {
			return nil, cliapp.Codef(cliapp.CodeNoFileSpecified, "cannot operate on non-existent file %q", file)
		}
		if root.SuggestionsMinimumDistance <= 0 {
			root.SuggestionsMinimumDistance = 2
		}
		if f.NFlag() == 0 && !strings.ContainsAny(file, "./"+string(os.PathSeparator)) {
			msg := fmt.Sprintf("unknown command %q", file)
			if s := root.SuggestionsFor(file); len(s) > 0 {
				msg += fmt.Sprintf(": did you mean %q?", s[0])
			}
			return nil, cliapp.Codef(cliapp.CodeGeneric, "%s (to create a file of that name, use \"lacre edit %s\")", msg, file)
		}
	}
	sub, _, err := root.Find([]string{mode})
	if err != nil || sub == root {
		return nil, cliapp.Codef(cliapp.CodeGeneric, "no %q command", mode)
	}
	out := []string{mode}
	var unused []string
	f.Visit(func(fl *pflag.Flag) {
		if legacyDropped[fl.Name] {
			return
		}
		if sub.Flags().Lookup(fl.Name) == nil && sub.InheritedFlags().Lookup(fl.Name) == nil {
			unused = append(unused, "--"+fl.Name)
			return
		}
		out = append(out, "--"+fl.Name+"="+fl.Value.String())
	})
	if len(unused) > 0 {
		fmt.Fprintf(root.ErrOrStderr(), "lacre: warning: ignored for %s (as sops does): %s\n", mode, strings.Join(unused, " "))
	}
	if mode == "set" {
		path, value, err := splitLegacySet(f.Lookup("set").Value.String())
		if err != nil {
			return nil, err
		}
		return append(out, "--", file, path, value), nil
	}
	return append(out, "--", file), nil
}

// splitLegacySet splits --set's "PATH VALUE" after the path's last "] ",
// as sops does.
func splitLegacySet(s string) (path, value string, err error) {
	i := strings.Index(s, "] ")
	if i < 0 {
		return "", "", cliapp.Codef(cliapp.CodeInvalidSetFormat, "invalid --set format: want 'PATH VALUE', like '[\"key\"] \"value\"'")
	}
	return strings.TrimRight(s[:i+1], " "), s[i+2:], nil
}

func flagBool(f *pflag.FlagSet, name string) bool {
	v, _ := f.GetBool(name)
	return v
}
