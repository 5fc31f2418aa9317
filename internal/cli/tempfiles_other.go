//go:build !unix

package cli

import (
	"io/fs"
	"os"
)

var catchSignals = []os.Signal{os.Interrupt}

func signalExitCode(os.Signal) int { return 1 }

// processAlive cannot tell: a stale file is then never removed.
func processAlive(int) bool { return true }

func ownedByUs(fs.FileInfo) bool { return false }

func hardLinks(fs.FileInfo) int { return 1 }

func keepOwner(*os.File, fs.FileInfo) error { return nil }
