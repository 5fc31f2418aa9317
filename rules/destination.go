package rules

import (
	"errors"
	"fmt"
	"regexp"
)

// DestinationRule is one entry of destination_rules, which "publish"
// reads: where a file goes (exactly one of an S3 bucket, a GCS bucket or a
// Vault KV path) and the keys to encrypt it for there.
type DestinationRule struct {
	PathRegex *regexp.Regexp // nil matches every file

	S3Bucket, S3Prefix   string
	GCSBucket, GCSPrefix string
	// Vault KV: the secret's path under the mount, the server's address
	// ("" for VAULT_ADDR), the mount ("secret/" when unset, with a
	// trailing slash) and the KV version (1 or 2, 2 when unset or other).
	VaultPath, VaultAddress, VaultKVMount string
	VaultKVVersion                        int

	// Recreation is recreation_rule: the keys (and selection rules) the
	// file is encrypted with again before an S3 or GCS upload; without
	// keys, the file is uploaded as it is.
	Recreation     CreationRule
	OmitExtensions bool
}

type rawDestination struct {
	PathRegex        string  `yaml:"path_regex"`
	S3Bucket         string  `yaml:"s3_bucket"`
	S3Prefix         string  `yaml:"s3_prefix"`
	GCSBucket        string  `yaml:"gcs_bucket"`
	GCSPrefix        string  `yaml:"gcs_prefix"`
	VaultPath        string  `yaml:"vault_path"`
	VaultAddress     string  `yaml:"vault_address"`
	VaultKVMountName string  `yaml:"vault_kv_mount_name"`
	VaultKVVersion   int     `yaml:"vault_kv_version"`
	RecreationRule   rawRule `yaml:"recreation_rule"`
	OmitExtensions   bool    `yaml:"omit_extensions"`
}

// ErrNoDestination is returned when no destination rule matches a file.
var ErrNoDestination = errors.New("no matching destination found in .sops.yaml (destination_rules)")

func parseDestination(r rawDestination) (DestinationRule, error) {
	d := DestinationRule{
		S3Bucket: r.S3Bucket, S3Prefix: r.S3Prefix, GCSBucket: r.GCSBucket, GCSPrefix: r.GCSPrefix,
		VaultPath: r.VaultPath, VaultAddress: r.VaultAddress, VaultKVMount: r.VaultKVMountName,
		VaultKVVersion: r.VaultKVVersion, OmitExtensions: r.OmitExtensions,
	}
	if r.PathRegex != "" {
		re, err := regexp.Compile(r.PathRegex)
		if err != nil {
			return d, fmt.Errorf("path_regex: %v", err)
		}
		d.PathRegex = re
	}
	n := 0
	for _, s := range []string{r.S3Bucket, r.GCSBucket, r.VaultPath} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return d, errors.New("more than one destination (s3_bucket, gcs_bucket, vault_path) in one rule: use one per rule")
	}
	// As sops: a trailing slash on the path and the mount; KV version 2
	// unless 1.
	if d.VaultPath != "" && d.VaultPath[len(d.VaultPath)-1] != '/' {
		d.VaultPath += "/"
	}
	if d.VaultKVMount == "" {
		d.VaultKVMount = "secret/"
	} else if d.VaultKVMount[len(d.VaultKVMount)-1] != '/' {
		d.VaultKVMount += "/"
	}
	if d.VaultKVVersion != 1 {
		d.VaultKVVersion = 2
	}
	rec, err := parseRule(r.RecreationRule)
	if err != nil {
		return d, fmt.Errorf("recreation_rule: %w", err)
	}
	d.Recreation = rec
	return d, nil
}

// HasDestination reports whether the rule names a destination.
func (d *DestinationRule) HasDestination() bool {
	return d.S3Bucket != "" || d.GCSBucket != "" || d.VaultPath != ""
}

// Destination returns the first destination rule whose path_regex matches
// filePath as given on the command line (as sops does for publish).
func (c *Config) Destination(filePath string) (*DestinationRule, error) {
	for i := range c.DestinationRules {
		d := &c.DestinationRules[i]
		if d.PathRegex == nil || d.PathRegex.MatchString(filePath) {
			return d, nil
		}
	}
	return nil, ErrNoDestination
}
