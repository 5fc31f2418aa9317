package oci

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// ErrInvalidSecret: a credentials, certificate or proxy Secret cannot be
// used. Errors never quote a secret value.
var ErrInvalidSecret = errors.New("invalid secret")

// Keychain holds registry credentials by host, from dockerconfigjson
// Secrets (spec.secretRef, the service account's imagePullSecrets).
type Keychain map[string]authn.AuthConfig

// dockerConfig is the .dockerconfigjson layout.
type dockerConfig struct {
	Auths map[string]struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	} `json:"auths"`
}

// Add reads a Secret's .dockerconfigjson entry into k (the first Secret
// naming a host wins).
func (k Keychain) Add(data map[string][]byte) error {
	raw, ok := data[".dockerconfigjson"]
	if !ok {
		return fmt.Errorf("%w: key '.dockerconfigjson' not found", ErrInvalidSecret)
	}
	var c dockerConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("%w: .dockerconfigjson does not parse", ErrInvalidSecret)
	}
	for host, a := range c.Auths {
		cfg := authn.AuthConfig{Username: a.Username, Password: a.Password}
		if a.Auth != "" && cfg.Username == "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return fmt.Errorf("%w: .dockerconfigjson: 'auth' of %q is not base64", ErrInvalidSecret, host)
			}
			cfg.Username, cfg.Password, _ = strings.Cut(string(dec), ":")
		}
		h := registryHost(host)
		if _, dup := k[h]; !dup {
			k[h] = cfg
		}
	}
	return nil
}

// registryHost is the host[:port] of a dockerconfigjson key (which may be
// a URL such as https://index.docker.io/v1/).
func registryHost(key string) string {
	if u, err := url.Parse(key); err == nil && u.Host != "" {
		key = u.Host
	}
	key, _, _ = strings.Cut(key, "/")
	if key == "index.docker.io" || key == "registry-1.docker.io" {
		return "index.docker.io"
	}
	return key
}

// Resolve implements authn.Keychain.
func (k Keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if c, ok := k[registryHost(r.RegistryStr())]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}

// Values are the secrets k holds, for redaction.
func (k Keychain) Values() []string {
	var out []string
	for _, c := range k {
		out = append(out, c.Password, c.Auth, c.IdentityToken, c.RegistryToken)
	}
	return out
}

// Transport returns the HTTP transport for certSecretRef's entries (ca.crt,
// tls.crt, tls.key; nil data: none) and a proxy URL ("" for none; its
// credentials in the URL's user info).
func Transport(certData map[string][]byte, proxy *url.URL) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	if proxy != nil {
		t.Proxy = http.ProxyURL(proxy)
	}
	if certData == nil {
		return t, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := certData["ca.crt"]; len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("%w: 'ca.crt' holds no PEM certificate", ErrInvalidSecret)
		}
		cfg.RootCAs = pool
	}
	crt, key := certData["tls.crt"], certData["tls.key"]
	switch {
	case len(crt) > 0 && len(key) > 0:
		pair, err := tls.X509KeyPair(crt, key)
		if err != nil {
			return nil, fmt.Errorf("%w: 'tls.crt' and 'tls.key' are not a valid key pair", ErrInvalidSecret)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case len(crt) > 0 || len(key) > 0:
		return nil, fmt.Errorf("%w: 'tls.crt' and 'tls.key' must be given together", ErrInvalidSecret)
	}
	t.TLSClientConfig = cfg
	return t, nil
}
