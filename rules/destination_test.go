package rules

import (
	"strings"
	"testing"
)

func TestDestinationRules(t *testing.T) {
	cfg, err := Parse([]byte(`
destination_rules:
  - path_regex: 's3/.*'
    s3_bucket: bucket
    s3_prefix: pre/
    recreation_rule:
      age: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  - path_regex: 'vault/.*'
    vault_path: app
    vault_kv_mount_name: kv
    vault_kv_version: 1
  - vault_path: other/
`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := cfg.Destination("s3/a.yaml")
	if err != nil || d.S3Bucket != "bucket" || d.S3Prefix != "pre/" || len(d.Recreation.KeyGroups) != 1 || len(d.Recreation.KeyGroups[0]) != 1 {
		t.Errorf("s3 rule: %+v, %v", d, err)
	}
	d, _ = cfg.Destination("vault/a.yaml")
	if d.VaultPath != "app/" || d.VaultKVMount != "kv/" || d.VaultKVVersion != 1 {
		t.Errorf("vault rule: %+v", d)
	}
	d, _ = cfg.Destination("x.yaml")
	if d.VaultPath != "other/" || d.VaultKVMount != "secret/" || d.VaultKVVersion != 2 || len(d.Recreation.KeyGroups) != 0 {
		t.Errorf("default rule: %+v", d)
	}
	_, err = Parse([]byte("destination_rules:\n  - s3_bucket: a\n    gcs_bucket: b\n"))
	if err == nil || !strings.Contains(err.Error(), "more than one destination") {
		t.Errorf("two destinations: %v", err)
	}
	cfg, _ = Parse([]byte("destination_rules:\n  - path_regex: only\n    s3_bucket: a\n"))
	if _, err := cfg.Destination("x"); err != ErrNoDestination {
		t.Errorf("no match: %v", err)
	}
}
