package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/flatten"
	"github.com/lacre/lacre/sops/formats"
)

// execFlags are the flags exec-env and exec-file share with sops's.
type execFlags struct {
	df          decryptFlags
	ff          formatFlags
	background  bool
	user        string
	pristine    bool // exec-env
	sameProcess bool // exec-env
	noFifo      bool // exec-file
	filename    string
}

func (xf *execFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&xf.background, "background", false, "start the command and do not wait for it (deprecated in sops)")
	f.StringVar(&xf.user, "user", "", "run the command as this user")
	f.StringVar(&xf.df.decryptionOrder, "decryption-order", "", "master key types to try first, comma separated (env SOPS_DECRYPTION_ORDER)")
}

// execArgs checks sops's "FILE COMMAND" arguments.
func execArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 2 {
		return cliapp.Codef(cliapp.CodeGeneric, "missing file to decrypt: %s FILE COMMAND", cmd.CommandPath())
	}
	return nil
}

func (a *app) execEnvCommand() *cobra.Command {
	var xf execFlags
	cmd := &cobra.Command{
		Use:   "exec-env [flags] FILE COMMAND",
		Short: "Run a command with the decrypted values in its environment",
		Long: `Decrypt FILE and run COMMAND with sh -c, with each top-level key of the file as
an environment variable. The plaintext reaches the command only through its
environment. The command's exit code is lacre's.`,
		Example: `  lacre exec-env secrets.env 'psql "$DATABASE_URL"'`,
		Args:    execArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if xf.background {
				a.Warnf("--background is deprecated (as in sops)")
				if xf.sameProcess {
					return cliapp.Codef(cliapp.CodeConflictingParameters, "--same-process cannot be used with --background")
				}
			}
			tree, err := a.decryptForExec(cmd.Context(), args[0], &xf)
			if err != nil {
				return prefixErr(args[0], err)
			}
			vars, err := envFromTree(tree)
			if err != nil {
				return prefixErr(args[0], err)
			}
			return a.runExec(args[1], vars, &xf)
		},
	}
	xf.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&xf.pristine, "pristine", false, "pass only the decrypted values, not lacre's environment")
	f.BoolVar(&xf.sameProcess, "same-process", false, "replace lacre with the command (exec) instead of running a child")
	return cmd
}

func (a *app) execFileCommand() *cobra.Command {
	var xf execFlags
	cmd := &cobra.Command{
		Use:   "exec-file [flags] FILE COMMAND",
		Short: "Run a command with the decrypted file in a fifo or temporary file",
		Long: `Decrypt FILE and run COMMAND with sh -c, where {} in COMMAND is the path of
the plaintext: a fifo (read once) in a private directory, or with --no-fifo a
0600 file there. The directory is removed when the command exits, also when it
is killed or lacre is interrupted. The command's exit code is lacre's.`,
		Example: `  lacre exec-file secret.enc.yaml 'kubectl apply -f {}'
  lacre exec-file --no-fifo --filename app.env secrets.env 'docker run --env-file {} app'`,
		Args: execArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if xf.background {
				a.Warnf("--background is deprecated (as in sops)")
			}
			if xf.filename != "" && (filepath.IsAbs(xf.filename) || !filepath.IsLocal(xf.filename)) {
				return cliapp.Codef(cliapp.CodeGeneric, "--filename %q is not a local path", xf.filename)
			}
			tree, err := a.decryptForExec(cmd.Context(), args[0], &xf)
			if err != nil {
				return prefixErr(args[0], err)
			}
			_, out, err := xf.ff.formats(args[0])
			if err != nil {
				return err
			}
			s, err := a.newSession()
			if err != nil {
				return err
			}
			plain, err := formats.NewStore(out, s.storeOpts).EmitPlainFile(tree.Branches)
			if err != nil {
				return cliapp.WithCode(cliapp.CodeErrorDumpingTree, err)
			}
			return a.execWithFile(args[1], plain, &xf)
		},
	}
	xf.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&xf.noFifo, "no-fifo", false, "use a 0600 regular file instead of a fifo")
	f.StringVar(&xf.filename, "filename", "", "name of the fifo or file (default: tmp-file)")
	f.StringVar(&xf.ff.inputType, "input-type", "", "input format: yaml, json, dotenv, ini or binary (default: by extension)")
	f.StringVar(&xf.ff.outputType, "output-type", "", "format of the plaintext given to the command (default: the input format)")
	return cmd
}

func (a *app) decryptForExec(ctx context.Context, path string, xf *execFlags) (*sops.Tree, error) {
	f, err := a.openFile(path, &xf.ff, nil)
	if err != nil {
		return nil, err
	}
	if err := f.decryptOnly(ctx, &xf.df); err != nil {
		return nil, err
	}
	if len(f.tree.Branches) == 0 {
		return nil, cliapp.Codef(cliapp.CodeNeedAtLeastOneDocument, "the file has no documents")
	}
	return f.tree, nil
}

// envFromTree turns the first document's top-level values into KEY=value,
// as sops does: comments skipped, nested values and keys with "=" refused.
func envFromTree(tree *sops.Tree) ([]string, error) {
	var env []string
	for _, it := range tree.Branches[0] {
		if flatten.IsComplex(it.Value) {
			return nil, cliapp.Codef(cliapp.CodeGeneric, "cannot use complex value in environment; offending key %v", it.Key)
		}
		if _, ok := it.Key.(sops.Comment); ok {
			continue
		}
		k, ok := it.Key.(string)
		if !ok {
			return nil, cliapp.Codef(cliapp.CodeGeneric, "cannot use non-string keys in environment, got %T", it.Key)
		}
		if strings.Contains(k, "=") {
			return nil, cliapp.Codef(cliapp.CodeGeneric, "cannot use keys with '=' in environment: %q", k)
		}
		v, ok := it.Value.(string)
		if !ok {
			v = flatten.ValueString(it.Value)
		}
		env = append(env, k+"="+v)
	}
	return env, nil
}

// childEnv is the command's environment: lacre's (unless pristine), the
// user's HOME, USER and LOGNAME with --user, then extra.
func childEnv(pristine bool, u *execUser, extra []string) []string {
	var env []string
	if !pristine {
		env = os.Environ()
	}
	if u != nil {
		env = append(env, u.env...)
	}
	return append(env, extra...)
}

func (a *app) runExec(command string, vars []string, xf *execFlags) error {
	u, err := lookupExecUser(xf.user)
	if err != nil {
		return err
	}
	env := childEnv(xf.pristine, u, vars)
	if xf.sameProcess {
		return execSameProcess(command, env, u)
	}
	return a.runChild(command, env, u, xf.background)
}

// runChild runs sh -c command and returns its exit code as lacre's.
func (a *app) runChild(command string, env []string, u *execUser, background bool) error {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Env = env
	u.apply(cmd)
	if background {
		if err := cmd.Start(); err != nil {
			return cliapp.WithCode(cliapp.CodeGeneric, err)
		}
		return cmd.Process.Release()
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.Stdin, a.Stdout, a.Stderr
	if f, ok := a.Stdin.(*os.File); ok {
		cmd.Stdin = f
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return cliapp.SilentExit(childExitCode(ee))
	}
	if err != nil {
		return cliapp.WithCode(cliapp.CodeGeneric, fmt.Errorf("running the command: %v", err))
	}
	return nil
}

// execWithFile gives the plaintext to the command in a fifo or a 0600
// file in a private directory, removed when the command ends.
func (a *app) execWithFile(command string, plain []byte, xf *execFlags) error {
	u, err := lookupExecUser(xf.user)
	if err != nil {
		return err
	}
	dir, err := privateTempDir()
	if err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	defer os.RemoveAll(dir)
	defer trackTemp(dir)()
	name := xf.filename
	if name == "" {
		name = "tmp-file"
	}
	var path string
	if xf.noFifo {
		path, err = writePlainFile(dir, xf.filename, plain)
	} else {
		path, err = servePlainFifo(dir, name, plain)
	}
	if err == nil {
		err = u.chown(dir, path)
	}
	if err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	env := childEnv(false, u, nil)
	return a.runChild(strings.ReplaceAll(command, "{}", path), env, u, xf.background)
}

// writePlainFile writes plain to a 0600 file in dir: name, or like sops a
// random "tmp-file..." name.
func writePlainFile(dir, name string, plain []byte) (string, error) {
	var f *os.File
	var err error
	if name == "" {
		f, err = os.CreateTemp(dir, "tmp-file")
	} else {
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return "", err
	}
	if _, err := f.Write(plain); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}
