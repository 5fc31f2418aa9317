package source

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// TLSFromSecret builds the client TLS configuration of a certSecretRef
// Secret by Flux's keys: tls.crt and tls.key (a client certificate, both
// or neither) and ca.crt (added to the system's roots); certFile, keyFile
// and caFile are the legacy names, read when the new ones are absent. A
// Secret with neither a pair nor a CA is invalid, as in Flux. Errors
// never quote the content.
func TLSFromSecret(data map[string][]byte) (*tls.Config, error) {
	get := func(k, legacy string) []byte {
		if v, ok := data[k]; ok {
			return v
		}
		return data[legacy]
	}
	cert, key, ca := get("tls.crt", "certFile"), get("tls.key", "keyFile"), get("ca.crt", "caFile")
	switch {
	case len(cert) > 0 && len(key) == 0:
		return nil, fmt.Errorf("%w: found 'tls.crt' without 'tls.key'", ErrInvalidSecret)
	case len(key) > 0 && len(cert) == 0:
		return nil, fmt.Errorf("%w: found 'tls.key' without 'tls.crt'", ErrInvalidSecret)
	case len(cert) == 0 && len(ca) == 0:
		return nil, fmt.Errorf("%w: no 'tls.crt'/'tls.key' pair nor 'ca.crt'", ErrInvalidSecret)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cert) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%w: 'tls.crt' and 'tls.key' are not a valid key pair", ErrInvalidSecret)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if len(ca) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("%w: failed to parse CA certificate 'ca.crt'", ErrInvalidSecret)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
