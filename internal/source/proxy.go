package source

import (
	"crypto/tls"
	"fmt"
	"net/url"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// maxProxyURL bounds the proxy address, as Flux's does (2048).
const maxProxyURL = 2048

// ProxyFromSecret reads a GitRepository's spec.proxySecretRef Secret by
// Flux's keys: address (an http, https or socks5 URL, required), username
// and password. Errors never quote the password.
func ProxyFromSecret(data map[string][]byte) (transport.ProxyOptions, error) {
	addr, ok := data["address"]
	switch {
	case !ok:
		return transport.ProxyOptions{}, fmt.Errorf("%w: key 'address' not found", ErrInvalidSecret)
	case len(addr) == 0:
		return transport.ProxyOptions{}, fmt.Errorf("%w: proxy address is empty", ErrInvalidSecret)
	case len(addr) > maxProxyURL:
		return transport.ProxyOptions{}, fmt.Errorf("%w: proxy URL exceeds maximum length of %d characters", ErrInvalidSecret, maxProxyURL)
	}
	u, err := url.Parse(string(addr))
	if err != nil {
		return transport.ProxyOptions{}, fmt.Errorf("%w: failed to parse proxy address", ErrInvalidSecret)
	}
	switch u.Scheme {
	case "http", "https", "socks5":
	default:
		return transport.ProxyOptions{}, fmt.Errorf("%w: proxy URL must use one of the supported schemes (http, https, socks5), got %q", ErrInvalidSecret, u.Scheme)
	}
	u.User = nil
	return transport.ProxyOptions{URL: u.String(), Username: string(data["username"]), Password: string(data["password"])}, nil
}

// clientCert is the TLS client certificate and key (secretRef's tls.crt
// and tls.key) for HTTPS: both or neither, and a valid pair.
func clientCert(a *Auth) (cert, key []byte, err error) {
	if a == nil || (len(a.TLSCert) == 0 && len(a.TLSKey) == 0) {
		return nil, nil, nil
	}
	if len(a.TLSCert) == 0 || len(a.TLSKey) == 0 {
		return nil, nil, fmt.Errorf("%w: 'tls.crt' and 'tls.key' must be given together", ErrInvalidSecret)
	}
	if _, err := tls.X509KeyPair(a.TLSCert, a.TLSKey); err != nil {
		return nil, nil, fmt.Errorf("%w: 'tls.crt' and 'tls.key' are not a valid key pair", ErrInvalidSecret)
	}
	return a.TLSCert, a.TLSKey, nil
}

// proxyOptions is the proxy of a, if any.
func proxyOptions(a *Auth) transport.ProxyOptions {
	if a == nil {
		return transport.ProxyOptions{}
	}
	return a.Proxy
}
