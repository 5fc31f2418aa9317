// Package keyref owns the answer to "which master key is this?": it parses a
// master-key reference of any backend (an age recipient, a PGP fingerprint,
// an AWS KMS ARN with its role, encryption context and profile, a GCP KMS
// resource ID, an Azure Key Vault key URL with an optional version, a Vault
// transit URI), gives it a canonical ID and tells whether a reference names
// a given key. It uses the standard library only, so every layer (rules,
// keys and the key backends) can share it.
//
// The folding rules, which every caller uses:
//   - PGP fingerprints compare case-insensitively (hex digits; spaces are
//     removed when a reference is parsed);
//   - an Azure Key Vault key is the same key whatever its version: ID keeps
//     the version, Unversioned drops it, and a reference without a version
//     Matches every version;
//   - an AWS KMS key is its ARN, role, encryption context and profile (as
//     sops's "arn+role|context|profile"); a reference that leaves role,
//     context or profile unset Matches any;
//   - Vault transit and Azure URLs compare in their parsed form
//     (scheme://host/...), so a trailing slash does not make another key.
package keyref

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Master key types, as named in the SOPS metadata.
const (
	TypeAge     = "age"
	TypePGP     = "pgp"
	TypeKMS     = "kms"
	TypeGCPKMS  = "gcp_kms"
	TypeAzureKV = "azure_kv"
	TypeVault   = "hc_vault"
	TypeHCKMS   = "hckms"
)

// A Ref names one master key, as a .sops.yaml rule, a command-line flag or a
// file's metadata does.
type Ref struct {
	Type       string            // TypeAge, TypePGP, ...
	Value      string            // recipient, fingerprint, ARN, resource ID, key URL or transit URI
	Role       string            // AWS role to assume
	AWSProfile string            // AWS profile
	Context    map[string]string // AWS encryption context
}

// New returns the reference written as s for a key of type typ (a flag's or
// a .sops.yaml entry's text): an AWS KMS "arn+role" is split, spaces in a
// PGP fingerprint are removed. It does not validate; see Parse.
func New(typ, s string) Ref {
	r := Ref{Type: typ, Value: s}
	switch typ {
	case TypeKMS:
		r.Value, r.Role, _ = strings.Cut(s, "+")
	case TypePGP:
		r.Value = strings.ReplaceAll(s, " ", "")
	}
	return r
}

// Parse is New followed by Validate.
func Parse(typ, s string) (Ref, error) {
	r := New(typ, s)
	return r, r.Validate()
}

// FromFields returns the reference of a stored master key from its
// identifying fields, named as in the SOPS metadata (age: recipient; pgp:
// fp; kms: arn, role, aws_profile; gcp_kms: resource_id; azure_kv:
// vault_url, name, version; hc_vault: vault_address, engine_path, key_name;
// hckms: key_id) and, for AWS KMS, its encryption context. Its String is
// the form SOPS prints.
func FromFields(typ string, fields, context map[string]string) Ref {
	f := func(k string) string { return fields[k] }
	r := Ref{Type: typ}
	switch typ {
	case TypeAge:
		r.Value = f("recipient")
	case TypePGP:
		r.Value = f("fp")
	case TypeKMS:
		r.Value, r.Role, r.AWSProfile, r.Context = f("arn"), f("role"), f("aws_profile"), context
	case TypeGCPKMS:
		r.Value = f("resource_id")
	case TypeAzureKV:
		// As SOPS prints it: the version's slash even without a version.
		r.Value = f("vault_url") + "/keys/" + f("name") + "/" + f("version")
	case TypeVault:
		r.Value = VaultURI(f("vault_address"), f("engine_path"), f("key_name"))
	case TypeHCKMS:
		r.Value = f("key_id")
	default:
		ks := slices.Sorted(maps.Keys(fields))
		parts := make([]string, len(ks))
		for i, k := range ks {
			parts[i] = k + "=" + fields[k]
		}
		r.Value = strings.Join(parts, ",")
	}
	return r
}

// String returns the reference as written: its Value, with an AWS KMS key's
// role, context and profile appended as "arn+role|k:v,k2:v2|profile". For a
// reference from FromFields it is the form SOPS prints for the key.
func (r Ref) String() string {
	switch r.Type {
	case TypeKMS:
		return kmsString(r.Value, r.Role, r.Context, r.AWSProfile)
	case TypeAge, TypePGP, TypeGCPKMS, TypeAzureKV, TypeVault, TypeHCKMS:
		return r.Value
	}
	return r.Type + ":" + r.Value
}

func kmsString(arn, role string, ctx map[string]string, profile string) string {
	id := arn
	if role != "" {
		id += "+" + role
	}
	if len(ctx) > 0 {
		ks := slices.Sorted(maps.Keys(ctx))
		parts := make([]string, len(ks))
		for i, k := range ks {
			parts[i] = k + ":" + ctx[k]
		}
		id += "|" + strings.Join(parts, ",")
	}
	if profile != "" {
		id += "|" + profile
	}
	return id
}

// ID returns the canonical identity of the key within its Type: two
// references with the same Type and ID name the same master key (and, for
// Azure Key Vault, the same version). PGP fingerprints are upper-cased;
// Azure and Vault URLs are put in their parsed form.
func (r Ref) ID() string {
	switch r.Type {
	case TypePGP:
		return strings.ToUpper(r.Value)
	case TypeAzureKV:
		if v, name, version, err := ParseAzureKeyURL(r.Value); err == nil {
			return AzureKeyURL(v, name, version)
		}
		return strings.TrimSuffix(r.Value, "/")
	case TypeVault:
		if a, e, k, err := ParseVaultURI(r.Value); err == nil {
			return VaultURI(a, e, k)
		}
	}
	return r.String()
}

// Unversioned returns r without an Azure Key Vault key version: the key
// whatever its version (a file records the version it resolved; a rule
// usually names none). Other references are returned unchanged.
func (r Ref) Unversioned() Ref {
	if r.Type != TypeAzureKV {
		return r
	}
	if v, name, _, err := ParseAzureKeyURL(r.Value); err == nil {
		r.Value = AzureKeyURL(v, name, "")
		return r
	}
	// Not a valid URL: cut after <vault>/keys/<name> as written.
	u := strings.TrimSuffix(r.Value, "/")
	if vault, rest, ok := strings.Cut(u, "/keys/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		r.Value = vault + "/keys/" + name
	} else {
		r.Value = u
	}
	return r
}

// Matches reports whether r, read as a pattern (a --rm-* flag, say), names
// the key k: the same type and key, where what r leaves unset (an Azure
// version; an AWS role, context or profile) matches anything.
func (r Ref) Matches(k Ref) bool {
	if r.Type != k.Type {
		return false
	}
	switch r.Type {
	case TypeKMS:
		return r.Value == k.Value && (r.Role == "" || r.Role == k.Role) &&
			(r.AWSProfile == "" || r.AWSProfile == k.AWSProfile) &&
			(len(r.Context) == 0 || maps.Equal(r.Context, k.Context))
	case TypeAzureKV:
		if r.Unversioned().ID() != k.Unversioned().ID() {
			return false
		}
		return r.Unversioned().ID() == r.ID() || r.ID() == k.ID()
	}
	return r.ID() == k.ID()
}

// Validate checks the reference's syntax for the types whose syntax is known
// before a backend sees it: AWS KMS ARNs, age recipients, Azure key URLs and
// Vault transit URIs.
func (r Ref) Validate() error {
	switch r.Type {
	case TypeVault:
		_, _, _, err := ParseVaultURI(r.Value)
		return err
	case TypeAzureKV:
		_, _, _, err := ParseAzureKeyURL(r.Value)
		return err
	case TypeKMS:
		if !strings.HasPrefix(r.Value, "arn:") {
			return fmt.Errorf("invalid AWS KMS key ARN %q", r.Value)
		}
	case TypeAge:
		if !strings.HasPrefix(r.Value, "age1") && !strings.HasPrefix(r.Value, "ssh-") {
			return fmt.Errorf("invalid age recipient %q", r.Value)
		}
	}
	return nil
}

// VaultURI formats a Vault transit key URI.
func VaultURI(address, enginePath, keyName string) string {
	return address + "/v1/" + enginePath + "/keys/" + keyName
}

// AzureKeyURL formats an Azure Key Vault key URL; with no version it ends
// at the name.
func AzureKeyURL(vaultURL, name, version string) string {
	u := vaultURL + "/keys/" + name
	if version != "" {
		u += "/" + version
	}
	return u
}

// ParseVaultURI validates a Vault transit key URI of the form
// https://host:8200/v1/<engine path>/keys/<name>.
func ParseVaultURI(uri string) (address, enginePath, keyName string, err error) {
	u, err := ParseVaultAddress(uri)
	if err != nil {
		return "", "", "", fmt.Errorf("invalid vault transit URI %q: %w", uri, err)
	}
	p := strings.TrimPrefix(u.Path, "/")
	rest, ok := strings.CutPrefix(p, "v1/")
	if !ok {
		return "", "", "", fmt.Errorf("invalid vault transit URI %q: the path must start with /v1/", uri)
	}
	i := strings.LastIndex(rest, "/keys/")
	if i <= 0 || strings.HasSuffix(rest, "/keys/") || strings.Contains(rest[i+len("/keys/"):], "/") {
		return "", "", "", fmt.Errorf("invalid vault transit URI %q: want /v1/<engine>/keys/<name>", uri)
	}
	return u.Scheme + "://" + u.Host, rest[:i], rest[i+len("/keys/"):], nil
}

// ErrVaultUserinfo refuses a Vault address with user information
// (user@host): http://vault:8200@other:9999 is a request to other.
var ErrVaultUserinfo = errors.New("user information (user@) is not allowed in a vault address")

// ParseVaultAddress parses a Vault address or URL: http or https, a host,
// no user information (http://a:8200@b:9999 goes to b), no query or
// fragment.
func ParseVaultAddress(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, errors.New("want https://host:8200/v1/<engine>/keys/<name>")
	case u.User != nil || strings.Contains(u.Host, "@"):
		return nil, ErrVaultUserinfo
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return nil, errors.New("a vault address has no query or fragment")
	}
	return u, nil
}

// VaultHostPort is u's lower-cased host and its port, made explicit (http
// 80, https 443), for exact comparisons.
func VaultHostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// ParseAzureKeyURL validates https://<vault>/keys/<name>[/<version>].
func ParseAzureKeyURL(raw string) (vaultURL, name, version string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Scheme != "https" {
		return "", "", "", fmt.Errorf("invalid azure key vault key URL %q: want https://<vault>/keys/<name>[/<version>]", raw)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" || parts[1] == "" {
		return "", "", "", fmt.Errorf("invalid azure key vault key URL %q: want https://<vault>/keys/<name>[/<version>]", raw)
	}
	if len(parts) == 3 {
		version = parts[2]
	}
	return u.Scheme + "://" + u.Host, parts[1], version, nil
}
