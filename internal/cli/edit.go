package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

func (a *app) editCommand() *cobra.Command {
	var ef encryptFlags
	var df decryptFlags
	var ff formatFlags
	g := ruleGuard{recipients: true}
	var showMeta bool
	cmd := &cobra.Command{
		Use:   "edit [flags] FILE",
		Short: "Edit an encrypted file in $SOPS_EDITOR or $EDITOR",
		Long: `Decrypt FILE into a private temporary file (in memory-backed /dev/shm when
available), open it in $SOPS_EDITOR or $EDITOR, and encrypt it again when the editor
exits. Values you did not change keep their ciphertext, so Git diffs show only what
changed. A missing FILE is created from an example, with the keys of the flags or
of .sops.yaml; left unchanged, nothing is created (exit 200, as sops).`,
		Example: `  EDITOR=nano lacre edit secret.enc.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return prefixErr(args[0], a.edit(cmd.Context(), args[0], &ef, &df, &ff, &g, showMeta))
		},
	}
	ef.register(cmd)
	df.register(cmd)
	f := cmd.Flags()
	f.StringVar(&ff.inputType, "input-type", "", "file format: yaml, json, dotenv, ini or binary (default: by extension)")
	f.StringVar(&ff.outputType, "output-type", "", "format to write the file in (default: the input format)")
	f.BoolVarP(&showMeta, "show-master-keys", "s", false, "show the sops metadata (master keys, ...) in the editor; edits to it are kept, as in sops")
	g.register(f)
	return cmd
}

var exampleFiles = map[formats.Format]string{
	formats.YAML:   "example_key: example_value\n",
	formats.JSON:   "{\n\t\"example_key\": \"example_value\"\n}\n",
	formats.Dotenv: "example_key=example_value\n",
	formats.INI:    "[section]\nexample_key = example_value\n",
	formats.Binary: "example value\n",
}

func (a *app) edit(ctx context.Context, path string, ef *encryptFlags, df *decryptFlags, ff *formatFlags, g *ruleGuard, showMeta bool) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		_, err := a.rewrite(ctx, path, ff, nil, g, func(ctx context.Context, f *sopsFile) (bool, error) {
			if err := f.decrypt(ctx, df); err != nil {
				return false, err
			}
			if showMeta {
				return a.editWithMetadata(ctx, f)
			}
			plain, err := f.store().EmitPlainFile(f.tree.Branches)
			if err != nil {
				return false, cliapp.WithCode(cliapp.CodeErrorDumpingTree, err)
			}
			branches, err := a.editPlain(ctx, path, f.store().LoadPlainFile, plain, true)
			if err != nil {
				return false, err
			}
			f.tree.Branches = branches
			return true, nil
		})
		return err
	}
	if showMeta {
		a.Warnf("--show-master-keys has no effect when creating a file")
	}
	in, _, err := ff.formats(path)
	if err != nil {
		return err
	}
	s, err := a.newSession()
	if err != nil {
		return err
	}
	store := formats.NewStore(in, s.storeOpts)
	branches, err := a.editPlain(ctx, path, store.LoadPlainFile, []byte(exampleFiles[in]), true)
	if err != nil {
		return err
	}
	groups, threshold, r, err := a.plan(ctx, ef, s, path)
	if err != nil {
		return err
	}
	nt := sops.Tree{Branches: branches}
	if err := a.setSelection(&nt.Metadata, in, r); err != nil {
		return cliapp.WithCode(cliapp.CodeConflictingParameters, err)
	}
	if err := sopsfile.EncryptTree(ctx, &nt, groups, threshold); err != nil {
		// sops: "Error encrypting the data key with one or more master keys", 128
		return cliapp.WithCode(cliapp.CodeCouldNotRetrieveKey, err)
	}
	out, err := emitEncrypted(path, in, s.storeOpts, &nt)
	if err != nil {
		return err
	}
	return writeFile(path, out)
}

// editPlain runs the editor on plain, in a private temporary file named
// like path, until what it leaves parses with load, and returns that. With
// mustChange, an unchanged file is an error.
func (a *app) editPlain(ctx context.Context, path string, load func([]byte) (sops.TreeBranches, error), plain []byte, mustChange bool) (sops.TreeBranches, error) {
	dir, err := privateTempDir()
	if err != nil {
		return nil, cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	defer os.RemoveAll(dir)
	defer trackTemp(dir)()
	tmp := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(tmp, plain, 0o600); err != nil {
		return nil, cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	for {
		if err := a.runEditor(ctx, tmp); err != nil {
			return nil, err
		}
		edited, err := a.readInput(tmp)
		if err != nil {
			return nil, err
		}
		if mustChange && bytes.Equal(edited, plain) {
			return nil, cliapp.Codef(cliapp.CodeFileHasNotBeenModified, "file has not been modified")
		}
		branches, err := load(edited)
		if err == nil {
			return branches, nil
		}
		if !a.interactive() {
			return nil, cliapp.WithCode(cliapp.CodeCouldNotReadInputFile, fmt.Errorf("the edited file is not valid: %v", err))
		}
		fmt.Fprintf(a.Stderr, "lacre: the edited file is not valid: %v\nPress Enter to edit it again, or Ctrl-C to give up. ", err)
		if _, err := bufio.NewReader(a.Stdin).ReadString('\n'); err != nil {
			return nil, cliapp.WithCode(cliapp.CodeCouldNotReadInputFile, errors.New("edit abandoned"))
		}
	}
}

// privateTempDir makes a 0700 directory for plaintext, in memory-backed
// /dev/shm when the system has it (see tempfiles.go for its removal).
func privateTempDir() (string, error) {
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	removeStaleTemps(base)
	return os.MkdirTemp(base, fmt.Sprintf("lacre-edit-%d-", os.Getpid()))
}

func (a *app) interactive() bool {
	f, ok := a.Stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) runEditor(ctx context.Context, file string) error {
	editor := a.env("SOPS_EDITOR")
	if editor == "" {
		editor = a.env("EDITOR")
	}
	if editor == "" {
		for _, e := range []string{"vim", "nano", "vi"} {
			if p, err := exec.LookPath(e); err == nil {
				editor = p
				break
			}
		}
	}
	if editor == "" {
		return cliapp.Codef(cliapp.CodeNoEditorFound, "no editor found: set $SOPS_EDITOR or $EDITOR")
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", editor+` "$1"`, "lacre-editor", file)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.Stdin, a.Stderr, a.Stderr
	if f, ok := a.Stdin.(*os.File); ok {
		cmd.Stdin = f
	}
	if err := cmd.Run(); err != nil {
		return cliapp.WithCode(cliapp.CodeNoEditorFound, fmt.Errorf("editor %q failed: %v", editor, err))
	}
	return nil
}

// editWithMetadata is edit -s: the editor shows the decrypted values with
// the sops metadata, and what is left there, metadata included, is the
// file's new content (as sops's --show-master-keys). The data key stays.
func (a *app) editWithMetadata(ctx context.Context, f *sopsFile) (bool, error) {
	store := f.store()
	plain, err := store.EmitEncryptedFile(*f.tree)
	if err != nil {
		return false, cliapp.WithCode(cliapp.CodeErrorDumpingTree, err)
	}
	var meta sops.Metadata
	branches, err := a.editPlain(ctx, f.path, func(b []byte) (sops.TreeBranches, error) {
		t, err := store.LoadEncryptedFile(b)
		if err != nil {
			return nil, err
		}
		if len(t.Metadata.KeyGroups) == 0 {
			return nil, errors.New("the sops metadata has no master keys")
		}
		meta = t.Metadata
		return t.Branches, nil
	}, plain, true)
	if err != nil {
		return false, err
	}
	f.tree.Branches, f.tree.Metadata = branches, meta
	return true, nil
}
