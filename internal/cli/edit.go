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

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

func (a *App) editCommand() *cobra.Command {
	var ef encryptFlags
	var df decryptFlags
	var ff formatFlags
	cmd := &cobra.Command{
		Use:   "edit [flags] FILE",
		Short: "Edit an encrypted file in $SOPS_EDITOR or $EDITOR",
		Long: `Decrypt FILE into a private temporary file (in memory-backed /dev/shm when
available), open it in $SOPS_EDITOR or $EDITOR, and encrypt it again when the editor
exits. Values you did not change keep their ciphertext, so Git diffs show only what
changed. A missing FILE is created from an example, with the keys of the flags or
of .sops.yaml.`,
		Example: `  EDITOR=nano lacre edit secret.enc.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return prefixErr(args[0], a.edit(cmd.Context(), args[0], &ef, &df, &ff))
		},
	}
	ef.register(cmd)
	df.register(cmd)
	f := cmd.Flags()
	f.StringVar(&ff.inputType, "input-type", "", "file format: yaml, json, dotenv, ini or binary (default: by extension)")
	return cmd
}

var exampleFiles = map[formats.Format]string{
	formats.YAML:   "example_key: example_value\n",
	formats.JSON:   "{\n\t\"example_key\": \"example_value\"\n}\n",
	formats.Dotenv: "example_key=example_value\n",
	formats.INI:    "[section]\nexample_key = example_value\n",
	formats.Binary: "example value\n",
}

func (a *App) edit(ctx context.Context, path string, ef *encryptFlags, df *decryptFlags, ff *formatFlags) error {
	in, _, err := ff.formats(path)
	if err != nil {
		return err
	}
	lc, err := a.loadConfig()
	if err != nil {
		return err
	}
	storeOpts := a.storeOptions(lc)
	store := formats.NewStore(in, storeOpts)
	b := a.backends()

	var tree *sops.Tree
	var cipher *sops.Cipher
	var plain []byte
	_, statErr := os.Stat(path)
	exists := !errors.Is(statErr, fs.ErrNotExist)
	if exists {
		if tree, err = a.loadEncrypted(path, in, storeOpts); err != nil {
			return err
		}
		if cipher, _, err = a.decryptTree(ctx, tree, b, df); err != nil {
			return err
		}
		if plain, err = store.EmitPlainFile(tree.Branches); err != nil {
			return WithCode(codeErrorDumpingTree, err)
		}
	} else {
		plain = []byte(exampleFiles[in])
	}

	dir, err := privateTempDir()
	if err != nil {
		return WithCode(codeCouldNotWriteOutput, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(tmp, plain, 0o600); err != nil {
		return WithCode(codeCouldNotWriteOutput, err)
	}

	var branches sops.TreeBranches
	for {
		if err := a.runEditor(ctx, tmp); err != nil {
			return err
		}
		edited, err := os.ReadFile(tmp)
		if err != nil {
			return WithCode(CodeCouldNotReadInputFile, err)
		}
		if exists && bytes.Equal(edited, plain) {
			return Codef(codeFileHasNotBeenModified, "file has not been modified")
		}
		branches, err = store.LoadPlainFile(edited)
		if err == nil {
			break
		}
		if !a.interactive() {
			return WithCode(CodeCouldNotReadInputFile, fmt.Errorf("the edited file is not valid: %v", err))
		}
		fmt.Fprintf(a.Stderr, "lacre: the edited file is not valid: %v\nPress Enter to edit it again, or Ctrl-C to give up. ", err)
		if _, err := bufio.NewReader(a.Stdin).ReadString('\n'); err != nil {
			return WithCode(CodeCouldNotReadInputFile, errors.New("edit abandoned"))
		}
	}

	var out []byte
	if exists {
		tree.Branches = branches
		if err := tree.Encrypt(cipher); err != nil {
			return WithCode(codeErrorEncryptingTree, err)
		}
		out, err = store.EmitEncryptedFile(*tree)
	} else {
		groups, threshold, r, perr := a.plan(ctx, ef, lc, path, b)
		if perr != nil {
			return perr
		}
		nt := sops.Tree{Branches: branches}
		if err := nt.Metadata.SetSelection(r); err != nil {
			return WithCode(codeConflictingParameters, err)
		}
		if err := sopsfile.EncryptTree(ctx, &nt, groups, threshold); err != nil {
			return WithCode(codeErrorEncryptingTree, err)
		}
		out, err = store.EmitEncryptedFile(nt)
	}
	if err != nil {
		return WithCode(codeErrorDumpingTree, err)
	}
	return writeFileAtomic(path, out)
}

// privateTempDir makes a 0700 directory for plaintext, in memory-backed
// /dev/shm when the system has it.
func privateTempDir() (string, error) {
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	return os.MkdirTemp(base, "lacre-edit-")
}

func (a *App) interactive() bool {
	f, ok := a.Stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *App) runEditor(ctx context.Context, file string) error {
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
		return Codef(codeNoEditorFound, "no editor found: set $SOPS_EDITOR or $EDITOR")
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", editor+` "$1"`, "lacre-editor", file)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.Stdin, a.Stderr, a.Stderr
	if f, ok := a.Stdin.(*os.File); ok {
		cmd.Stdin = f
	}
	if err := cmd.Run(); err != nil {
		return WithCode(CodeGeneric, fmt.Errorf("editor %q failed: %v", editor, err))
	}
	return nil
}
