//go:build !unix

package cliapp

import (
	"context"
	"errors"
	"os/exec"
)

// execCompanion runs the companion with this run's streams and passes its
// exit code on.
func (a *App) execCompanion(ctx context.Context, path string) error {
	cmd := exec.Command(path, a.args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.Stdin, a.Stdout, a.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return SilentExit(ee.ExitCode())
	}
	if err != nil {
		return companionError(path, err)
	}
	return nil
}
