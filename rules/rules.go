// Package rules reads .sops.yaml: creation rules (which master keys and
// which selection rule a new file gets, by path) and store settings. It
// describes keys as data (package keyref parses and compares them; the
// selection settings are a sops.Selection); the key backends turn them into
// recipients.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keyref"
	"github.com/lacre/lacre/sops"
)

// FileName is the config file sops and lacre look for.
const FileName = ".sops.yaml"

const maxConfigSize = 4 << 20

// Errors.
var (
	ErrNotFound       = errors.New("no .sops.yaml found")
	ErrNoMatchingRule = errors.New("no matching creation rules found")
)

// IgnoredYMLError reports a .sops.yml, which sops (and lacre) never read.
type IgnoredYMLError struct{ Path string }

func (e *IgnoredYMLError) Error() string {
	return fmt.Sprintf("found %s, which is ignored: rename it to .sops.yaml", e.Path)
}

// Find walks up from dir (at most 100 levels) to the nearest .sops.yaml. If
// none exists but a .sops.yml does, the error is an *IgnoredYMLError (which
// also matches ErrNotFound).
func Find(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	var yml string
	for i := 0; i < 100; i++ {
		p := filepath.Join(dir, FileName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		if yml == "" {
			if _, err := os.Stat(filepath.Join(dir, ".sops.yml")); err == nil {
				yml = filepath.Join(dir, ".sops.yml")
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if yml != "" {
		return "", fmt.Errorf("%w: %w", ErrNotFound, &IgnoredYMLError{Path: yml})
	}
	return "", ErrNotFound
}

// Key is a master key named in a rule (package keyref owns its parsing,
// identity and matching).
type Key = keyref.Ref

// CreationRule is one entry of creation_rules.
type CreationRule struct {
	PathRegex *regexp.Regexp // nil matches every file
	KeyGroups [][]Key
	// ShamirThreshold is the number of groups needed (0: all).
	ShamirThreshold int
	// Selection holds the rule's selection rules and mac_only_encrypted.
	sops.Selection
}

// StoresConfig holds the `stores` section; nil fields are unset.
type StoresConfig struct {
	YAMLIndent       *int
	JSONIndent       *int
	JSONBinaryIndent *int
}

// Config is a parsed .sops.yaml.
type Config struct {
	CreationRules    []CreationRule
	DestinationRules []DestinationRule
	Stores           StoresConfig
}

type rawKMS struct {
	ARN        string            `yaml:"arn"`
	Role       string            `yaml:"role"`
	Context    map[string]string `yaml:"context"`
	AWSProfile string            `yaml:"aws_profile"`
}

type rawAzure struct {
	VaultURL string `yaml:"vaultUrl"`
	Key      string `yaml:"key"`
	Version  string `yaml:"version"`
}

type rawGroup struct {
	Merge  []rawGroup `yaml:"merge"`
	KMS    []rawKMS   `yaml:"kms"`
	GCPKMS []struct {
		ResourceID string `yaml:"resource_id"`
	} `yaml:"gcp_kms"`
	HCKMS []struct {
		KeyID string `yaml:"key_id"`
	} `yaml:"hckms"`
	AzureKV []rawAzure `yaml:"azure_keyvault"`
	Vault   []string   `yaml:"hc_vault"`
	Age     []string   `yaml:"age"`
	PGP     []string   `yaml:"pgp"`
}

type rawRule struct {
	PathRegex       string         `yaml:"path_regex"`
	KMS             any            `yaml:"kms"`
	AWSProfile      string         `yaml:"aws_profile"`
	Age             any            `yaml:"age"`
	PGP             any            `yaml:"pgp"`
	GCPKMS          any            `yaml:"gcp_kms"`
	HCKMS           []string       `yaml:"hckms"`
	AzureKeyVault   any            `yaml:"azure_keyvault"`
	VaultURI        any            `yaml:"hc_vault_transit_uri"`
	KeyGroups       []rawGroup     `yaml:"key_groups"`
	ShamirThreshold int            `yaml:"shamir_threshold"`
	Selection       sops.Selection `yaml:",inline"`
}

type rawIndent struct {
	Indent *int `yaml:"indent"`
}

type rawConfig struct {
	CreationRules    []rawRule        `yaml:"creation_rules"`
	DestinationRules []rawDestination `yaml:"destination_rules"`
	Stores           struct {
		YAML       rawIndent `yaml:"yaml"`
		JSON       rawIndent `yaml:"json"`
		JSONBinary rawIndent `yaml:"json_binary"`
	} `yaml:"stores"`
}

// keyField reads a key field written as a comma-separated string or a list.
func keyField(v any, field string) ([]string, error) {
	var out []string
	add := func(s string) {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	switch v := v.(type) {
	case nil:
	case string:
		add(v)
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("%s: list entries must be strings", field)
			}
			add(s)
		}
	default:
		return nil, fmt.Errorf("%s: must be a string or a list of strings", field)
	}
	return out, nil
}

func dedupe(in []Key) ([]Key, error) {
	seen := map[string]bool{}
	var out []Key
	for _, k := range in {
		if err := k.Validate(); err != nil {
			return nil, err
		}
		if id := k.Type + "/" + k.ID(); !seen[id] {
			seen[id] = true
			out = append(out, k)
		}
	}
	return out, nil
}

func groupKeys(g rawGroup, depth int) ([]Key, error) {
	if depth > 20 {
		return nil, errors.New("key_groups merge is nested too deeply")
	}
	var out []Key
	for _, k := range g.KMS {
		arn, role := k.ARN, k.Role
		if a, r, ok := strings.Cut(arn, "+"); ok && role == "" {
			arn, role = a, r
		}
		out = append(out, Key{Type: keys.TypeKMS, Value: arn, Role: role, AWSProfile: k.AWSProfile, Context: k.Context})
	}
	for _, k := range g.GCPKMS {
		out = append(out, Key{Type: keys.TypeGCPKMS, Value: k.ResourceID})
	}
	for _, k := range g.HCKMS {
		out = append(out, Key{Type: keys.TypeHCKMS, Value: k.KeyID})
	}
	for _, k := range g.AzureKV {
		u := strings.TrimSuffix(k.VaultURL, "/") + "/keys/" + k.Key
		if k.Version != "" {
			u += "/" + k.Version
		}
		out = append(out, Key{Type: keys.TypeAzureKV, Value: u})
	}
	for _, v := range g.Vault {
		out = append(out, Key{Type: keys.TypeVault, Value: v})
	}
	for _, v := range g.PGP {
		out = append(out, keyref.New(keys.TypePGP, v))
	}
	for _, v := range g.Age {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, Key{Type: keys.TypeAge, Value: p})
			}
		}
	}
	for _, m := range g.Merge {
		ks, err := groupKeys(m, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, ks...)
	}
	return out, nil
}

func parseRule(r rawRule) (CreationRule, error) {
	cr := CreationRule{ShamirThreshold: r.ShamirThreshold, Selection: r.Selection}
	if r.PathRegex != "" {
		re, err := regexp.Compile(r.PathRegex)
		if err != nil {
			return cr, fmt.Errorf("path_regex: %v", err)
		}
		cr.PathRegex = re
	}
	if err := r.Selection.Validate(); err != nil {
		return cr, fmt.Errorf("%w in the same rule", err)
	}
	for _, f := range r.Selection.Fields() {
		if *f.Value != "" && strings.HasSuffix(f.Name, "regex") {
			if _, err := regexp.Compile(*f.Value); err != nil {
				return cr, fmt.Errorf("%s: %v", f.Name, err)
			}
		}
	}
	if r.ShamirThreshold < 0 {
		return cr, errors.New("shamir_threshold must not be negative")
	}
	if len(r.KeyGroups) > 0 {
		for i, g := range r.KeyGroups {
			ks, err := groupKeys(g, 0)
			if err != nil {
				return cr, fmt.Errorf("key_groups[%d]: %w", i, err)
			}
			if ks, err = dedupe(ks); err != nil {
				return cr, fmt.Errorf("key_groups[%d]: %w", i, err)
			}
			cr.KeyGroups = append(cr.KeyGroups, ks)
		}
		if len(cr.KeyGroups) > 1 && cr.ShamirThreshold > len(cr.KeyGroups) {
			return cr, fmt.Errorf("shamir_threshold %d is larger than the number of key groups (%d)", cr.ShamirThreshold, len(cr.KeyGroups))
		}
		return cr, nil
	}
	var g []Key
	fields := []struct {
		name, typ string
		v         any
	}{
		{"kms", keys.TypeKMS, r.KMS}, {"gcp_kms", keys.TypeGCPKMS, r.GCPKMS},
		{"azure_keyvault", keys.TypeAzureKV, r.AzureKeyVault}, {"hc_vault_transit_uri", keys.TypeVault, r.VaultURI},
		{"pgp", keys.TypePGP, r.PGP}, {"age", keys.TypeAge, r.Age},
	}
	for _, f := range fields {
		vals, err := keyField(f.v, f.name)
		if err != nil {
			return cr, err
		}
		for _, v := range vals {
			k := keyref.New(f.typ, v)
			if f.typ == keys.TypeKMS {
				k.AWSProfile = r.AWSProfile
			}
			g = append(g, k)
		}
	}
	for _, v := range r.HCKMS {
		g = append(g, Key{Type: keys.TypeHCKMS, Value: v})
	}
	g, err := dedupe(g)
	if err != nil {
		return cr, err
	}
	if len(g) > 0 {
		cr.KeyGroups = [][]Key{g}
	}
	return cr, nil
}

// Parse parses a .sops.yaml.
func Parse(data []byte) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, errors.New("config file is too large")
	}
	var raw rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("invalid YAML: %v", err)
	}
	cfg := &Config{}
	for i, r := range raw.CreationRules {
		cr, err := parseRule(r)
		if err != nil {
			return nil, fmt.Errorf("creation_rules[%d]: %w", i, err)
		}
		cfg.CreationRules = append(cfg.CreationRules, cr)
	}
	for i, r := range raw.DestinationRules {
		d, err := parseDestination(r)
		if err != nil {
			return nil, fmt.Errorf("destination_rules[%d]: %w", i, err)
		}
		cfg.DestinationRules = append(cfg.DestinationRules, d)
	}
	cfg.Stores = StoresConfig{YAMLIndent: raw.Stores.YAML.Indent, JSONIndent: raw.Stores.JSON.Indent, JSONBinaryIndent: raw.Stores.JSONBinary.Indent}
	return cfg, nil
}

// Rule returns the first creation rule matching filePath, whose path is
// taken relative to configDir when it lies below it (as sops does).
func (c *Config) Rule(filePath, configDir string) (*CreationRule, error) {
	if len(c.CreationRules) == 0 {
		return nil, ErrNoMatchingRule
	}
	p := filePath
	if configDir != "" {
		if abs, err := filepath.Abs(filePath); err == nil {
			prefix := strings.TrimSuffix(configDir, string(filepath.Separator)) + string(filepath.Separator)
			p = strings.TrimPrefix(abs, prefix)
		}
	}
	p = filepath.ToSlash(p)
	for i := range c.CreationRules {
		r := &c.CreationRules[i]
		if r.PathRegex == nil || r.PathRegex.MatchString(p) {
			return r, nil
		}
	}
	return nil, ErrNoMatchingRule
}
