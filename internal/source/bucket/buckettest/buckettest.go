// Package buckettest runs a real S3-protocol server on loopback for tests:
// gofakes3 (in-memory) behind a check of AWS Signature Version 4, so wrong
// credentials are refused as S3 refuses them, over HTTP or HTTPS.
package buckettest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Options configure a Server.
type Options struct {
	// AccessKey and SecretKey, when set, are the only credentials
	// accepted; otherwise anonymous requests are served.
	AccessKey, SecretKey string
	// TLS serves HTTPS with a self-signed certificate (CAPEM).
	TLS bool
}

// Server is a running S3-protocol server.
type Server struct {
	// Endpoint is host:port, a Bucket's spec.endpoint.
	Endpoint string
	// CAPEM is the server's certificate (with TLS), a certSecretRef's ca.crt.
	CAPEM   []byte
	opts    Options
	backend *s3mem.Backend
	srv     *httptest.Server
}

// New starts a server, stopped when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, backend: s3mem.New()}
	faker := gofakes3.New(s.backend)
	h := s.checkSignature(faker.Server())
	if opts.TLS {
		s.srv = httptest.NewTLSServer(h)
		s.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	} else {
		s.srv = httptest.NewServer(h)
	}
	t.Cleanup(s.srv.Close)
	s.Endpoint = strings.TrimPrefix(strings.TrimPrefix(s.srv.URL, "http://"), "https://")
	return s
}

// CreateBucket creates a bucket.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := s.backend.CreateBucket(name); err != nil {
		t.Fatal(err)
	}
}

// Put stores an object (or replaces it, with a new ETag when the
// content differs).
func (s *Server) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	// As gofakes3's PUT handler does: the object's Last-Modified.
	meta := map[string]string{"Last-Modified": time.Now().UTC().Format(http.TimeFormat)}
	if _, err := s.backend.PutObject(bucket, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
}

// Delete removes an object.
func (s *Server) Delete(t testing.TB, bucket, key string) {
	t.Helper()
	if _, err := s.backend.DeleteObject(bucket, key); err != nil {
		t.Fatal(err)
	}
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$`)

// checkSignature verifies each request's Signature Version 4 header
// against the configured credentials before next serves it.
func (s *Server) checkSignature(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.AccessKey == "" {
			next.ServeHTTP(w, r)
			return
		}
		m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
		switch {
		case m == nil:
			deny(w, "AccessDenied", "Access Denied")
		case m[1] != s.opts.AccessKey:
			deny(w, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		case !hmac.Equal([]byte(m[6]), []byte(s.signature(r, m))):
			deny(w, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// signature computes the request's signature (AWS SigV4) with the
// server's secret key, from the scope m of its Authorization header.
func (s *Server) signature(r *http.Request, m []string) string {
	date, region, service, signed := m[2], m[3], m[4], strings.Split(m[5], ";")
	sort.Strings(signed)
	var hdrs strings.Builder
	for _, h := range signed {
		v := strings.Join(r.Header.Values(h), ",")
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&hdrs, "%s:%s\n", h, strings.Join(strings.Fields(v), " "))
	}
	canonical := strings.Join([]string{
		r.Method,
		s3utils.EncodePath(r.URL.Path),
		strings.ReplaceAll(r.URL.Query().Encode(), "+", "%20"),
		hdrs.String(),
		strings.Join(signed, ";"),
		r.Header.Get("X-Amz-Content-Sha256"),
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{
		"AWS4-HMAC-SHA256", r.Header.Get("X-Amz-Date"),
		strings.Join([]string{date, region, service, "aws4_request"}, "/"), hex.EncodeToString(sum[:]),
	}, "\n")
	key := mac([]byte("AWS4"+s.opts.SecretKey), date)
	key = mac(key, region)
	key = mac(key, service)
	key = mac(key, "aws4_request")
	return hex.EncodeToString(mac(key, toSign))
}

func mac(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func deny(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}
