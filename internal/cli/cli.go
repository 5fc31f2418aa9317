// Package cli owns lacre's file commands: encrypt, decrypt, edit, set,
// unset, filestatus, rotate, updatekeys, keys, groups, keygen, check,
// exec-env and exec-file, and sops's legacy forms (sops -d FILE, sops FILE).
// Commands adds them to the root command of package cliapp, in lacre and
// in lacre-cluster. The commands that change an encrypted file share one
// open → change → save sequence (rewrite.go).
package cli

import (
	"bufio"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/sops/formats"
)

// app is the run's cliapp.App, with the file commands as its methods.
type app struct {
	*cliapp.App
	answers *bufio.Reader // stdin, for updatekeys' questions
}

func (a *app) env(k string) string { return a.Getenv(k) }

// Commands is the cliapp.Extension that adds the file commands.
func Commands(ca *cliapp.App, root *cobra.Command) {
	a := &app{App: ca}
	root.AddCommand(
		a.encryptCommand(),
		a.decryptCommand(),
		a.editCommand(),
		a.setCommand(),
		a.unsetCommand(),
		a.filestatusCommand(),
		a.rotateCommand(),
		a.updatekeysCommand(),
		a.keygenCommand(),
		a.keysCommand(),
		a.groupsCommand(),
		a.checkCommand(),
		a.execEnvCommand(),
		a.execFileCommand(),
		a.publishCommand(),
	)
	a.legacyRoot(root)
}

// session is what the files of one command share: the .sops.yaml in
// effect, the store options it and --indent give, and the keys of the
// environment.
type session struct {
	lc        *loadedConfig
	storeOpts formats.Options
	keys      *keysource.Source
}

// newSession loads .sops.yaml and the keys.
func (a *app) newSession() (*session, error) {
	lc, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	return &session{lc: lc, storeOpts: a.storeOptions(lc), keys: a.Keys()}, nil
}
