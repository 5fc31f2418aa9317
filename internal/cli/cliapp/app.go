// Package cliapp owns the lacre application: the App of one run (streams,
// environment, global flags), Main and Run, the root command that
// Extensions fill (the file commands of package cli, the cluster commands
// of package cluster), the exit codes and their errors, the version, and
// the companion executable lacre-cluster: finding and running it for the
// cluster commands, and reaching its cloud keys (package cloudproto).
package cliapp

import (
	"fmt"
	"io"

	"github.com/lacre/lacre/internal/cli/cloudproto"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/keys"
)

// App holds the process-wide options and streams of one CLI run. The
// file and cluster commands are built on it.
type App struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment; tests pass their own.
	Getenv func(string) string
	// CloudKeys builds the AWS KMS, GCP KMS and Azure Key Vault keys.
	// lacre-cluster sets it in its Extension; nil (in lacre) uses the
	// companion through a coprocess.
	CloudKeys cloudproto.Keys
	// KeyServiceDial connects to a remote key service (--keyservice).
	// lacre-cluster sets it in its Extension; nil (in lacre) reaches the
	// services through the companion.
	KeyServiceDial cloudproto.Dialer
	// Uploader stores published files in S3 and GCS; lacre-cluster sets
	// it, nil (in lacre) uses the companion.
	Uploader cloudproto.Uploader
	// LookupEnv tells a variable set empty from an unset one; nil uses
	// Getenv, with "" as unset.
	LookupEnv func(string) (string, bool)

	configPath string
	indent     int
	indentSet  bool
	verbose    bool
	args       []string // the arguments of this run, for the companion
	cloud      *cloudproto.Client
	rerun      bool // Run ran again for a legacy form (see Rerun)
	kflags     keyServiceFlags
}

func (a *App) env(k string) string { return a.Getenv(k) }

// Warnf prints "lacre: warning: ..." to stderr.
func (a *App) Warnf(format string, args ...any) {
	fmt.Fprintf(a.Stderr, "lacre: warning: "+format+"\n", args...)
}

// Infof prints "lacre: ..." to stderr with --verbose.
func (a *App) Infof(format string, args ...any) {
	if a.verbose {
		fmt.Fprintf(a.Stderr, "lacre: "+format+"\n", args...)
	}
}

// ConfigPath is the .sops.yaml named by --config or SOPS_CONFIG, "" when
// neither is set.
func (a *App) ConfigPath() string {
	if a.configPath != "" {
		return a.configPath
	}
	return a.env("SOPS_CONFIG")
}

// Indent is --indent, and whether it was given.
func (a *App) Indent() (n int, set bool) { return a.indent, a.indentSet }

// Cloud returns the run's cloud keys: the in-process CloudKeys that
// lacre-cluster sets, else a client of the companion's, started on first
// use and stopped at the end of the run.
func (a *App) Cloud() cloudproto.Keys {
	if a.CloudKeys != nil {
		return a.CloudKeys
	}
	return a.companionClient()
}

// Upload returns the run's S3 and GCS uploader: Uploader, else the
// companion's.
func (a *App) Upload() cloudproto.Uploader {
	if a.Uploader != nil {
		return a.Uploader
	}
	return a.companionClient()
}

// companionClient is the client of the companion's __cloud-keys.
func (a *App) companionClient() *cloudproto.Client {
	if a.cloud == nil {
		a.cloud = cloudproto.NewClient(cloudproto.Companion{
			Name:    Companion,
			Install: companionInstall,
			Find:    a.locateCompanion,
			Stderr:  a.Stderr,
		})
	}
	return a.cloud
}

// closeCloud ends the companion, if one was started.
func (a *App) closeCloud() {
	if a.cloud == nil {
		return
	}
	if err := a.cloud.Close(); err != nil {
		a.Warnf("%v", err)
	}
}

// Keys returns the master keys of this run's environment, through the key
// services of --enable-local-keyservice and --keyservice.
func (a *App) Keys() *keysource.Source {
	src := keysource.New(a.Getenv, a.Stderr, a.Cloud())
	src.UseKeyServices(a.kflags.ks)
	return src
}

// DecryptionKeys returns the identities lacre decrypt would use, the
// decryption order (SOPS_DECRYPTION_ORDER) and the problems met loading
// them, for commands of package cluster that decrypt (build --decrypt).
func (a *App) DecryptionKeys() (ids []keys.Identity, order []string, problems []error) {
	b := a.Keys()
	ids = b.Identities()
	return ids, keysource.Order("", a.Getenv), b.Problems()
}
