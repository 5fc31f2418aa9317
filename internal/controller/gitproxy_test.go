package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
)

// clientCA makes a CA and a client certificate it signed (PEM).
func clientCA(t *testing.T) (pool *x509.CertPool, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "lacre"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pool, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// tlsFront serves target over HTTPS, requiring a client certificate of
// clients; it returns the server and its certificate (PEM, for ca.crt).
func tlsFront(t *testing.T, target string, clients *x509.CertPool) (*httptest.Server, []byte) {
	t.Helper()
	u, _ := url.Parse(target)
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// countingProxy is an HTTP proxy with basic auth that counts the CONNECT
// tunnels and the plain requests it forwards.
type countingProxy struct{ connects, plain atomic.Int64 }

func (p *countingProxy) start(t *testing.T, user, pass string) string {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	fwd := &httputil.ReverseProxy{Director: func(*http.Request) {}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != want {
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		if r.Method != http.MethodConnect {
			p.plain.Add(1)
			r.Header.Del("Proxy-Authorization")
			fwd.ServeHTTP(w, r)
			return
		}
		p.connects.Add(1)
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { _, _ = io.Copy(up, conn); up.Close() }()
		go func() { _, _ = io.Copy(conn, up); conn.Close() }()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestGitRepositoryMTLSAndProxy(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "app")
	rev := repo.Commit("one", map[string]string{"a.yaml": "kind: ConfigMap\n"})
	pool, certPEM, keyPEM := clientCA(t)
	front, caPEM := tlsFront(t, strings.TrimSuffix(repo.URL(), "/app.git"), pool)
	httpsURL := front.URL + "/app.git"
	proxy := &countingProxy{}
	proxyURL := proxy.start(t, "proxyuser", "proxy-pass")

	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mtls"}, Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": caPEM}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca-only"}, Data: map[string][]byte{"ca.crt": caPEM}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "proxy"}, StringData: map[string]string{"address": proxyURL, "username": "proxyuser", "password": "proxy-pass"}},
	} {
		g.Expect(testClient.Create(testCtx, s)).To(Succeed())
	}
	create := func(name, url, secret, proxySecret string) {
		obj := gitRepo(ns, name, url, &sourcev1.GitRepositoryRef{Branch: "main"})
		if secret != "" {
			obj.Spec.SecretRef = &meta.LocalObjectReference{Name: secret}
		}
		if proxySecret != "" {
			obj.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: proxySecret}
		}
		g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	}
	ready := func(name string) {
		g.Eventually(func(g Gomega) {
			g.Expect(readyRevision(g, ns, name)).To(Equal("main@sha1:" + rev))
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), name)
	}
	failed := func(name, reason, text string) {
		g.Eventually(func(g Gomega) {
			o := getRepo(g, ns, name)
			c := condition(g, o.Status.Conditions, meta.ReadyCondition)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(reason))
			g.Expect(c.Message).To(ContainSubstring(text))
			g.Expect(c.Message).NotTo(ContainSubstring("proxy-pass"))
			g.Expect(o.Status.Artifact).To(BeNil())
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), name)
	}

	// mTLS: the client certificate of tls.crt/tls.key is presented.
	create("mtls", httpsURL, "mtls", "")
	ready("mtls")
	create("no-client-cert", httpsURL, "ca-only", "")
	failed("no-client-cert", sourcev1.GitOperationFailedReason, "")

	// Plain HTTP through the proxy: requests forwarded with proxy auth.
	create("proxied-http", repo.URL(), "", "proxy")
	ready("proxied-http")
	g.Expect(proxy.plain.Load()).To(BeNumerically(">", 0))

	// HTTPS (and mTLS) through the proxy: CONNECT tunnels.
	create("proxied-https", httpsURL, "mtls", "proxy")
	ready("proxied-https")
	g.Expect(proxy.connects.Load()).To(BeNumerically(">", 0))

	// A missing proxy Secret: AuthenticationFailed, as in Flux.
	create("no-proxy-secret", repo.URL(), "", "absent")
	failed("no-proxy-secret", sourcev1.AuthenticationFailedReason, "failed to configure proxy options")
}
