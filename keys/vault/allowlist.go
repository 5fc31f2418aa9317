package vault

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/lacre/lacre/keys/keyref"
)

// ErrNotAllowed is returned for a request to a Vault address outside the
// allowlist; no request is made.
var ErrNotAllowed = errors.New("is not in the allowlist")

// ParseAllowlist parses SOPS_HC_VAULT_ALLOWLIST: "all" (or empty), "none",
// or comma-separated Vault addresses (optionally with a path prefix).
// Entries with user information, a query or another scheme are refused.
func ParseAllowlist(s string) ([]string, error) {
	switch strings.TrimSpace(s) {
	case "", "all":
		return nil, nil
	case "none":
		return []string{}, nil
	}
	out := []string{}
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := keyref.ParseVaultAddress(p); err != nil {
			return nil, fmt.Errorf("vault allowlist entry %q: %w", p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// AddressAllowed reports whether a request URL may be sent under
// allowlist (nil: any): an entry matches when scheme, host and port are
// equal (default ports explicit: http 80, https 443) and its path is a
// prefix of the request's on a segment boundary (/v1/transit admits
// /v1/transit/decrypt/k, not /v1/transitx/…). A URL with user
// information is never allowed; neither is a path with "." or ".."
// segments under a path entry.
func AddressAllowed(allowlist []string, request string) error {
	u, err := keyref.ParseVaultAddress(request)
	if err != nil {
		return fmt.Errorf("vault address %q: %w", request, err)
	}
	if allowlist == nil {
		return nil
	}
	p := "/" + strings.TrimPrefix(u.Path, "/")
	clean := path.Clean(p) == strings.TrimSuffix(p, "/") || p == "/"
	for _, e := range allowlist {
		a, err := keyref.ParseVaultAddress(e)
		if err != nil || a.Scheme != u.Scheme || keyref.VaultHostPort(a) != keyref.VaultHostPort(u) {
			continue
		}
		prefix := strings.TrimSuffix(a.Path, "/")
		if prefix == "" || (clean && (p == prefix || strings.HasPrefix(p, prefix+"/"))) {
			return nil
		}
	}
	return fmt.Errorf("vault address %q %w", origin(u), ErrNotAllowed)
}

// origin is u's scheme and host, for messages.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }
