// Package formats picks a store for a file: by extension, as sops does, or
// by name (--input-type / --output-type). It also owns the one answer to
// "is this file a SOPS document?" without parsing it ([Sniff]).
package formats

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/stores/binary"
	"github.com/lacre/lacre/sops/stores/dotenv"
	"github.com/lacre/lacre/sops/stores/ini"
	jsonstore "github.com/lacre/lacre/sops/stores/json"
	yamlstore "github.com/lacre/lacre/sops/stores/yaml"
)

// Format is a file format.
type Format int

// The formats.
const (
	Binary Format = iota
	YAML
	JSON
	Dotenv
	INI
)

var names = map[Format]string{Binary: "binary", YAML: "yaml", JSON: "json", Dotenv: "dotenv", INI: "ini"}

func (f Format) String() string { return names[f] }

// FormatForPath chooses by extension: .yaml/.yml, .json, .env, .ini;
// anything else is binary.
func FormatForPath(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return YAML
	case ".json":
		return JSON
	case ".env":
		return Dotenv
	case ".ini":
		return INI
	}
	return Binary
}

// ParseFormat parses a format name.
func ParseFormat(name string) (Format, error) {
	for f, n := range names {
		if strings.EqualFold(n, name) {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown format %q: use yaml, json, dotenv, ini or binary", name)
}

// Options are store settings; nil means the format's default (YAML 4
// spaces, JSON a tab).
type Options struct {
	YAMLIndent       *int
	JSONIndent       *int
	JSONBinaryIndent *int
}

func orDefault(p *int, d int) int {
	if p == nil {
		return d
	}
	return *p
}

// MaxSize is the size of the largest file the store NewStore returns for
// f reads.
func MaxSize(f Format) int {
	switch f {
	case YAML:
		return yamlstore.DefaultMaxSize
	case Dotenv:
		return dotenv.MaxSize
	case INI:
		return ini.MaxSize
	}
	return jsonstore.DefaultMaxSize // JSON, and binary's JSON envelope
}

// NewStore returns the store for a format.
func NewStore(f Format, o Options) sops.Store {
	switch f {
	case YAML:
		return yamlstore.New(orDefault(o.YAMLIndent, 0))
	case JSON:
		return jsonstore.New(orDefault(o.JSONIndent, jsonstore.DefaultIndent))
	case Dotenv:
		return dotenv.New()
	case INI:
		return ini.New()
	}
	return binary.New(orDefault(o.JSONBinaryIndent, jsonstore.DefaultIndent))
}
