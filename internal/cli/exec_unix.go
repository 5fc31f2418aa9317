//go:build unix

package cli

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// execUser is the user of exec-env/exec-file --user: the command runs
// with its uid, gid and groups, and its HOME, USER and LOGNAME.
type execUser struct {
	cred *syscall.Credential
	env  []string
}

// lookupExecUser finds the user named by --user; nil for "".
func lookupExecUser(name string) (*execUser, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, cliapp.WithCode(cliapp.CodeGeneric, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, cliapp.Codef(cliapp.CodeGeneric, "user %q: numeric uid and gid needed", name)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return &execUser{cred: cred, env: []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username}}, nil
}

func (u *execUser) apply(cmd *exec.Cmd) {
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	}
}

// chown gives the plaintext's directory and file to the user, so that
// the command can read them (0700 and 0600 stay).
func (u *execUser) chown(paths ...string) error {
	if u == nil {
		return nil
	}
	for _, p := range paths {
		if err := os.Lchown(p, int(u.cred.Uid), int(u.cred.Gid)); err != nil {
			return err
		}
	}
	return nil
}

// execSameProcess replaces lacre with sh -c command (exec-env
// --same-process), as the user when one is given.
func execSameProcess(command string, env []string, u *execUser) error {
	if u != nil {
		groups := make([]int, len(u.cred.Groups))
		for i, g := range u.cred.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return cliapp.WithCode(cliapp.CodeGeneric, err)
		}
		if err := syscall.Setgid(int(u.cred.Gid)); err != nil {
			return cliapp.WithCode(cliapp.CodeGeneric, err)
		}
		if err := syscall.Setuid(int(u.cred.Uid)); err != nil {
			return cliapp.WithCode(cliapp.CodeGeneric, err)
		}
	}
	err := syscall.Exec("/bin/sh", []string{"/bin/sh", "-c", command}, env)
	return cliapp.WithCode(cliapp.CodeGeneric, err)
}

// servePlainFifo makes a 0600 fifo in dir and writes plain to the first
// reader that opens it, from a goroutine (opening a fifo for writing
// blocks until a reader comes).
func servePlainFifo(dir, name string, plain []byte) (string, error) {
	p := filepath.Join(dir, name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		return "", &os.PathError{Op: "mkfifo", Path: p, Err: err}
	}
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		_, _ = f.Write(plain)
		f.Close()
	}()
	return p, nil
}

// childExitCode is the command's exit code, 255 when a signal killed it
// (as sops).
func childExitCode(ee *exec.ExitError) int {
	if c := ee.ExitCode(); c >= 0 {
		return c
	}
	return 255
}
