// Package ocitest runs a real OCI registry on loopback for tests: the
// distribution protocol as go-containerregistry's pkg/registry speaks it,
// optionally behind basic auth and TLS, and able to corrupt the blobs it
// serves.
package ocitest

import (
	"bytes"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Options configure a Registry.
type Options struct {
	User, Password string // basic auth on every request when User is set
	TLS            bool
}

// Registry is a running registry.
type Registry struct {
	// Host is "127.0.0.1:port", to put after oci://.
	Host string
	// Pool trusts the registry's certificate (TLS only).
	Pool *x509.CertPool
	// Client reaches the registry (its transport trusts the certificate).
	Client *http.Client

	mu     sync.Mutex
	tamper map[string]bool // blob digests served corrupted
}

// Start starts a registry, stopped at the end of the test.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	r := &Registry{tamper: map[string]bool{}}
	h := r.middleware(registry.New(registry.Logger(log.New(io.Discard, "", 0))), o)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes of plain-HTTP probes
	if o.TLS {
		srv.StartTLS()
		r.Pool = x509.NewCertPool()
		r.Pool.AddCert(srv.Certificate())
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	r.Client = srv.Client()
	r.Host = strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")
	return r
}

// Tamper makes the registry serve the blob with digest ("sha256:...")
// with one byte changed and the same length.
func (r *Registry) Tamper(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tamper[digest] = true
}

func (r *Registry) middleware(next http.Handler, o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if o.User != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != o.User || p != o.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="ocitest"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		i := strings.LastIndex(req.URL.Path, "/blobs/")
		if req.Method != http.MethodGet || i < 0 {
			next.ServeHTTP(w, req)
			return
		}
		digest := req.URL.Path[i+len("/blobs/"):]
		r.mu.Lock()
		bad := r.tamper[digest]
		r.mu.Unlock()
		if !bad {
			next.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if len(body) > 0 {
			body = bytes.Clone(body)
			body[len(body)/2] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}
