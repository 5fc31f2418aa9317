//go:build !unix

package cli

import (
	"errors"
	"os/exec"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

type execUser struct{ env []string }

var errExecUnsupported = cliapp.Codef(cliapp.CodeGeneric, "not supported on this system")

func lookupExecUser(name string) (*execUser, error) {
	if name != "" {
		return nil, errExecUnsupported
	}
	return nil, nil
}

func (u *execUser) apply(*exec.Cmd)                     {}
func (u *execUser) chown(...string) error               { return nil }
func execSameProcess(string, []string, *execUser) error { return errExecUnsupported }

func servePlainFifo(string, string, []byte) (string, error) {
	return "", errors.New("no fifos on this system: use --no-fifo")
}

func childExitCode(ee *exec.ExitError) int {
	if c := ee.ExitCode(); c >= 0 {
		return c
	}
	return 255
}
