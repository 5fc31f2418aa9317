package cli

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sops/formats"
)

// loadedConfig is the .sops.yaml in effect, if any.
type loadedConfig struct {
	cfg  *rules.Config
	path string // "" when there is none
}

// loadConfig finds and parses .sops.yaml: --config, SOPS_CONFIG, or walking
// up from the working directory (as sops does).
func (a *app) loadConfig() (*loadedConfig, error) {
	path := a.ConfigPath()
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return &loadedConfig{}, nil
		}
		p, err := rules.Find(wd)
		if errors.Is(err, rules.ErrNotFound) {
			return &loadedConfig{}, nil
		}
		if err != nil {
			return nil, err
		}
		path = p
	}
	data, err := keysource.ReadBounded(path, keysource.MaxKeyFileSize)
	if err != nil {
		return nil, cliapp.WithCode(cliapp.CodeGeneric, err)
	}
	cfg, err := rules.Parse(data)
	if err != nil {
		return nil, cliapp.WithCode(cliapp.CodeGeneric, errors.New(path+": "+err.Error()))
	}
	abs, _ := filepath.Abs(path)
	return &loadedConfig{cfg: cfg, path: abs}, nil
}

// rule returns the creation rule for a file, or nil when there is no config.
func (lc *loadedConfig) rule(file string) (*rules.CreationRule, error) {
	if lc.cfg == nil || len(lc.cfg.CreationRules) == 0 {
		return nil, nil
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return lc.cfg.Rule(abs, filepath.Dir(lc.path))
}

// storeOptions merges the config's stores section with --indent.
func (a *app) storeOptions(lc *loadedConfig) formats.Options {
	var o formats.Options
	if lc != nil && lc.cfg != nil {
		s := lc.cfg.Stores
		o.YAMLIndent, o.JSONIndent, o.JSONBinaryIndent = s.YAMLIndent, s.JSONIndent, s.JSONBinaryIndent
	}
	if n, set := a.Indent(); set {
		o.YAMLIndent, o.JSONIndent, o.JSONBinaryIndent = &n, &n, &n
	}
	return o
}
