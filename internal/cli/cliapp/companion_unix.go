//go:build unix

package cliapp

import (
	"context"
	"os"
	"syscall"
)

// execCompanion replaces this process with the companion: stdin, signals
// and the exit code are the companion's.
func (a *App) execCompanion(ctx context.Context, path string) error {
	argv := append([]string{path}, a.args...)
	return companionError(path, syscall.Exec(path, argv, os.Environ()))
}
