// Package testcluster owns lacre's local Kubernetes control plane: a real
// etcd and kube-apiserver (built by hack/k8s) started on loopback, with
// their certificates and kubeconfig, for the tests, the demo and the scale
// benchmark. It uses the standard library only.
package testcluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// DefaultBinDir returns the directory hack/k8s/build.sh builds into:
// $LACRE_K8S_DIR, $KUBEBUILDER_ASSETS, or ~/.cache/lacre-k8s/v1.37.2.
func DefaultBinDir() string {
	for _, v := range []string{"LACRE_K8S_DIR", "KUBEBUILDER_ASSETS"} {
		if d := os.Getenv(v); d != "" {
			return d
		}
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "lacre-k8s", "v1.37.2")
}

// ErrNoBinaries is returned when etcd or kube-apiserver is missing.
var ErrNoBinaries = errors.New("kube-apiserver and etcd not found: run hack/k8s/build.sh")

// Options configure Start.
type Options struct {
	// BinDir holds kube-apiserver and etcd (DefaultBinDir when empty).
	BinDir string
	// Log receives both servers' output (discarded when nil; the last lines
	// are kept for errors).
	Log *os.File
	// ReadyTimeout bounds the wait for /readyz (default 60s).
	ReadyTimeout time.Duration
	// Dir, when set, is a directory kept across runs (created 0700 when
	// missing): etcd's data and the service-account key are reused, the
	// certificates and kubeconfig are written anew, and Stop leaves it in
	// place. Empty: a temporary directory, removed by Stop.
	Dir string
	// EncryptionConfig, when set, is the path of a kube-apiserver
	// EncryptionConfiguration (see WriteEncryptionConfig): Secrets are
	// encrypted at rest in etcd.
	EncryptionConfig string
}

// Cluster is a running control plane.
type Cluster struct {
	opts    Options
	dir     string
	host    string
	apiPort int
	etcdURL string

	CAPEM, CertPEM, KeyPEM []byte

	mu        sync.Mutex
	etcd, api *exec.Cmd
	logs      *tailBuffer
	stopped   bool
}

// Host returns the API server URL (https://127.0.0.1:PORT).
func (c *Cluster) Host() string { return c.host }

// Kubeconfig returns the path of a kubeconfig with admin credentials.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.dir, "kubeconfig") }

// Dir returns the cluster's private directory (removed by Stop).
func (c *Cluster) Dir() string { return c.dir }

type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	out *os.File
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.out != nil {
		t.out.Write(p)
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 64<<10 {
		t.buf = t.buf[len(t.buf)-32<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts etcd and kube-apiserver on random loopback ports, waits for
// /readyz and writes a kubeconfig.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.BinDir == "" {
		opts.BinDir = DefaultBinDir()
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, b)); err != nil {
			return nil, fmt.Errorf("%w (looked in %s)", ErrNoBinaries, opts.BinDir)
		}
	}
	dir := opts.Dir
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "lacre-cluster-")
	} else {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, dir: dir, logs: &tailBuffer{out: opts.Log}}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	if err := c.writeCerts(); err != nil {
		return nil, err
	}
	if err := c.startEtcd(); err != nil {
		return nil, err
	}
	if c.apiPort, err = freePort(); err != nil {
		return nil, err
	}
	c.host = "https://127.0.0.1:" + strconv.Itoa(c.apiPort)
	if err := c.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

func (c *Cluster) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.opts.BinDir, name), args...)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	cmd.SysProcAttr = procAttr()
	return cmd
}

func (c *Cluster) startEtcd() error {
	client, err := freePort()
	if err != nil {
		return err
	}
	peer, err := freePort()
	if err != nil {
		return err
	}
	c.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", client)
	c.etcd = c.cmd("etcd",
		"--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", c.etcdURL,
		"--advertise-client-urls", c.etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", peer),
		"--quota-backend-bytes", "8589934592",
		"--log-level", "warn",
	)
	if c.opts.Dir == "" {
		// Throwaway data: no fsync (a kept directory keeps it).
		c.etcd.Args = append(c.etcd.Args, "--unsafe-no-fsync")
	}
	return c.etcd.Start()
}

// StartAPIServer starts (or restarts, after StopAPIServer) the API server
// on the same port and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	if c.api != nil {
		c.mu.Unlock()
		return errors.New("the API server is already running")
	}
	d := c.dir
	c.api = c.cmd("kube-apiserver",
		"--etcd-servers", c.etcdURL,
		"--cert-dir", filepath.Join(d, "apiserver-certs"),
		"--secure-port", strconv.Itoa(c.apiPort),
		"--bind-address", "127.0.0.1",
		"--service-cluster-ip-range", "10.0.0.0/16",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", filepath.Join(d, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(d, "sa.key"),
		"--client-ca-file", filepath.Join(d, "ca.crt"),
		"--authorization-mode", "RBAC",
		"--disable-admission-plugins", "ServiceAccount",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--v", "0",
	)
	if c.opts.EncryptionConfig != "" {
		c.api.Args = append(c.api.Args, "--encryption-provider-config", c.opts.EncryptionConfig)
	}
	err := c.api.Start()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.waitReady(ctx)
}

// StopAPIServer stops the API server only (etcd keeps the data).
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	stop(c.api)
	c.api = nil
}

func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	pgid := -cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-done
	}
}

// Stop stops both servers and removes the data directory (unless it is
// Options.Dir). It is safe to call more than once.
func (c *Cluster) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	api, etcd := c.api, c.etcd
	c.api, c.etcd = nil, nil
	c.mu.Unlock()
	stop(api)
	stop(etcd)
	if c.opts.Dir == "" {
		os.RemoveAll(c.dir)
	}
}

// Pids returns the running processes' ids (for tests).
func (c *Cluster) Pids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, cmd := range []*exec.Cmd{c.etcd, c.api} {
		if cmd != nil && cmd.Process != nil {
			out = append(out, cmd.Process.Pid)
		}
	}
	return out
}

// HTTPClient returns a client authenticated as the admin user.
func (c *Cluster) HTTPClient() (*http.Client, error) {
	cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return nil, err
	}
	// The API server self-signs its serving certificate.
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true},
	}}, nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	client, err := c.HTTPClient()
	if err != nil {
		return err
	}
	client.Timeout = 2 * time.Second
	deadline := time.Now().Add(c.opts.ReadyTimeout)
	for {
		resp, err := client.Get(c.host + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready after %s; last log lines:\n%s", c.opts.ReadyTimeout, c.logs.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Cluster) writeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	validity := 24 * time.Hour
	if c.opts.Dir != "" {
		validity = 365 * 24 * time.Hour // a kept cluster may run for long
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lacre-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	userKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	userTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	userDER, err := x509.CreateCertificate(rand.Reader, userTmpl, ca, &userKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	userKeyDER, _ := x509.MarshalECPrivateKey(userKey)
	c.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	c.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: userDER})
	c.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: userKeyDER})
	if err := writeFileAtomic(filepath.Join(c.dir, "ca.crt"), c.CAPEM); err != nil {
		return err
	}
	return c.writeSAKeys()
}

// writeSAKeys writes the service-account signing key, or keeps the one a
// kept directory already holds (its tokens stay valid).
func (c *Cluster) writeSAKeys() error {
	if c.opts.Dir != "" {
		_, errKey := os.Stat(filepath.Join(c.dir, "sa.key"))
		_, errPub := os.Stat(filepath.Join(c.dir, "sa.pub"))
		if errKey == nil && errPub == nil {
			return nil
		}
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saPub, _ := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	files := map[string][]byte{
		"sa.key": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"sa.pub": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
	}
	for n, b := range files {
		if err := writeFileAtomic(filepath.Join(c.dir, n), b); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) writeKubeconfig() error {
	var b bytes.Buffer
	enc := base64.StdEncoding.EncodeToString
	fmt.Fprintf(&b, `apiVersion: v1
kind: Config
clusters:
- name: lacre-test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: lacre-test
  context:
    cluster: lacre-test
    user: admin
current-context: lacre-test
`, c.host, enc(c.CertPEM), enc(c.KeyPEM))
	return writeFileAtomic(c.Kubeconfig(), b.Bytes())
}
