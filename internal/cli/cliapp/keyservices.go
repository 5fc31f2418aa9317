package cliapp

import (
	"context"
	"errors"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/keys"
)

// keyServiceFlags are sops's --enable-local-keyservice and --keyservice,
// given on any command (sops has them on every command that wraps or
// unwraps a data key, and globally).
type keyServiceFlags struct {
	local  bool
	uris   []string
	closer []interface{ Close() error }
	// resolved by resolveKeyServices
	ks keysource.KeyServices
}

func (a *App) registerKeyServiceFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.BoolVar(&a.kflags.local, "enable-local-keyservice", true, "use this process's keys (env SOPS_ENABLE_LOCAL_KEYSERVICE); =false leaves every master key operation to --keyservice")
	pf.StringArrayVar(&a.kflags.uris, "keyservice", nil, "a sops key service to use after the local one, as protocol://address (tcp://host:5000, unix:///path/sock); repeatable (env SOPS_KEYSERVICE, comma separated)")
}

// resolveKeyServices reads the key service flags and their environment
// variables as sops does: a flag given wins over its variable; a set but
// empty SOPS_ENABLE_LOCAL_KEYSERVICE disables the local service.
func (a *App) resolveKeyServices(cmd *cobra.Command) error {
	f := &a.kflags
	local := f.local
	if fl := cmd.Flags().Lookup("enable-local-keyservice"); fl != nil && !fl.Changed {
		if v, set := a.lookupEnv("SOPS_ENABLE_LOCAL_KEYSERVICE"); set {
			b, err := strconv.ParseBool(v)
			if v == "" {
				b, err = false, nil
			}
			if err != nil {
				return Codef(CodeGeneric, "could not parse %q as a boolean for SOPS_ENABLE_LOCAL_KEYSERVICE (--enable-local-keyservice)", v)
			}
			local = b
		}
	}
	uris := f.uris
	if fl := cmd.Flags().Lookup("keyservice"); fl != nil && !fl.Changed {
		uris = keysource.SplitList(a.env("SOPS_KEYSERVICE"))
	}
	f.ks = keysource.KeyServices{DisableLocal: !local}
	for _, u := range uris {
		if _, _, err := keyservice.ParseURI(u); err != nil {
			return WithCode(CodeGeneric, err)
		}
		f.ks.Remote = append(f.ks.Remote, keyservice.Named{URI: u, Service: &lazyService{a: a, uri: u}})
	}
	return nil
}

// lookupEnv is os.LookupEnv through App: LookupEnv when set, else
// Getenv, with "" as unset.
func (a *App) lookupEnv(k string) (string, bool) {
	if a.LookupEnv != nil {
		return a.LookupEnv(k)
	}
	v := a.Getenv(k)
	return v, v != ""
}

// lazyService dials its key service on first use: in lacre-cluster
// directly (KeyServiceDial), in lacre through the companion.
type lazyService struct {
	a   *App
	uri string
	svc keyservice.Service
	err error
}

func (l *lazyService) get() (keyservice.Service, error) {
	if l.svc == nil && l.err == nil {
		if l.a.KeyServiceDial != nil {
			l.svc, l.err = l.a.KeyServiceDial(l.uri)
			if c, ok := l.svc.(interface{ Close() error }); ok {
				l.a.kflags.closer = append(l.a.kflags.closer, c)
			}
		} else {
			l.svc = l.a.companionClient().KeyService(l.uri)
		}
	}
	return l.svc, l.err
}

func (l *lazyService) Encrypt(ctx context.Context, key *keys.Stanza, plaintext []byte) ([]byte, error) {
	svc, err := l.get()
	if err != nil {
		return nil, err
	}
	return svc.Encrypt(ctx, key, plaintext)
}

func (l *lazyService) Decrypt(ctx context.Context, key *keys.Stanza, ciphertext []byte) ([]byte, error) {
	svc, err := l.get()
	if err != nil {
		return nil, err
	}
	return svc.Decrypt(ctx, key, ciphertext)
}

// closeKeyServices closes the connections to key services.
func (a *App) closeKeyServices() {
	var errs []error
	for _, c := range a.kflags.closer {
		errs = append(errs, c.Close())
	}
	if err := errors.Join(errs...); err != nil {
		a.Warnf("%v", err)
	}
}
