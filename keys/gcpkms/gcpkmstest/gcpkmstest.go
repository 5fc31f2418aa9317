// Package gcpkmstest is an in-process Cloud KMS server speaking the real
// gRPC protocol (google.cloud.kms.v1.KeyManagementService Encrypt and
// Decrypt), for tests and demos: the official client and the sops CLI can be
// pointed at it.
//
// Each crypto key is a random AES-256-GCM key; the key's resource name is
// the additional data, so a ciphertext only decrypts under the key that
// made it. Unknown keys give codes.NotFound, tampered ciphertext
// codes.InvalidArgument, and a missing or wrong bearer token (when one is
// required) codes.Unauthenticated.
package gcpkmstest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"math/big"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// MaxMessage bounds every request the server reads (Cloud KMS accepts at
// most 64 KiB of plaintext).
const MaxMessage = 256 << 10

const maxPlaintext = 64 << 10

var keyName = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$`)

// Server is a running fake Cloud KMS.
type Server struct {
	kmspb.UnimplementedKeyManagementServiceServer

	// Addr is the listening address, "127.0.0.1:port", usable as the
	// client's endpoint.
	Addr string
	// CACertPEM is the PEM certificate clients must trust (TLS servers
	// only); it is self-signed for 127.0.0.1 and localhost.
	CACertPEM []byte

	Encrypts atomic.Int64
	Decrypts atomic.Int64

	mu       sync.Mutex
	token    string
	keys     map[string]cipher.AEAD
	lastName string
	lastAuth string
	calls    []string

	srv *grpc.Server
	lis net.Listener
}

// New starts a plaintext (insecure) gRPC server on 127.0.0.1.
func New() *Server { return start(nil) }

// NewTLS starts a gRPC server with a fresh self-signed certificate; clients
// trust CACertPEM (or CertPool). A client that sends OAuth tokens (such as
// the sops CLI) needs TLS: gRPC refuses per-RPC credentials over plaintext.
func NewTLS() *Server {
	certPEM, keyPEM := selfSigned()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		panic("gcpkmstest: " + err.Error())
	}
	s := start(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	s.CACertPEM = certPEM
	return s
}

func start(creds credentials.TransportCredentials) *Server {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("gcpkmstest: " + err.Error())
	}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessage), grpc.MaxHeaderListSize(64 << 10)}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	s := &Server{Addr: lis.Addr().String(), keys: map[string]cipher.AEAD{}, lis: lis, srv: grpc.NewServer(opts...)}
	kmspb.RegisterKeyManagementServiceServer(s.srv, s)
	go s.srv.Serve(lis)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Stop() }

// CertPool returns a pool holding CACertPEM (nil for plaintext servers).
func (s *Server) CertPool() *x509.CertPool {
	if s.CACertPEM == nil {
		return nil
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(s.CACertPEM)
	return p
}

// RequireToken makes every request need the metadata header
// "authorization: Bearer <token>"; an empty token accepts any request.
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// CreateKey creates a crypto key (a fresh key if it exists).
// name is projects/P/locations/L/keyRings/R/cryptoKeys/K.
func (s *Server) CreateKey(name string) {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[name] = g
}

// LastName returns the Name field of the last Encrypt or Decrypt request.
func (s *Server) LastName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastName
}

// LastAuthorization returns the authorization metadata of the last request
// ("" if none was sent).
func (s *Server) LastAuthorization() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAuth
}

// Calls returns "Encrypt <name>" / "Decrypt <name>" for every request, in
// order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// check records a request and returns its key.
func (s *Server) check(ctx context.Context, method, name string) (cipher.AEAD, error) {
	var auth string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			auth = v[0]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastName, s.lastAuth = name, auth
	if len(s.calls) < 10000 {
		s.calls = append(s.calls, method+" "+name)
	}
	if s.token != "" && auth != "Bearer "+s.token {
		return nil, status.Error(codes.Unauthenticated, "request had invalid authentication credentials")
	}
	if !keyName.MatchString(name) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid resource name %q", name)
	}
	g := s.keys[name]
	if g == nil {
		return nil, status.Errorf(codes.NotFound, "%s not found", name)
	}
	return g, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) int64 { return int64(crc32.Checksum(b, castagnoli)) }

// Encrypt implements kmspb.KeyManagementServiceServer.
func (s *Server) Encrypt(ctx context.Context, req *kmspb.EncryptRequest) (*kmspb.EncryptResponse, error) {
	s.Encrypts.Add(1)
	g, err := s.check(ctx, "Encrypt", req.GetName())
	if err != nil {
		return nil, err
	}
	pt := req.GetPlaintext()
	if len(pt) == 0 || len(pt) > maxPlaintext {
		return nil, status.Error(codes.InvalidArgument, "plaintext must be 1 to 65536 bytes")
	}
	if c := req.GetPlaintextCrc32C(); c != nil && c.GetValue() != crc(pt) {
		return nil, status.Error(codes.InvalidArgument, "plaintext_crc32c did not match")
	}
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	ct := g.Seal(nonce, nonce, pt, aad(req.GetName(), req.GetAdditionalAuthenticatedData()))
	return &kmspb.EncryptResponse{
		Name:                    req.GetName() + "/cryptoKeyVersions/1",
		Ciphertext:              ct,
		CiphertextCrc32C:        wrapperspb.Int64(crc(ct)),
		VerifiedPlaintextCrc32C: req.GetPlaintextCrc32C() != nil,
		VerifiedAdditionalAuthenticatedDataCrc32C: req.GetAdditionalAuthenticatedDataCrc32C() != nil,
		ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE,
	}, nil
}

// Decrypt implements kmspb.KeyManagementServiceServer.
func (s *Server) Decrypt(ctx context.Context, req *kmspb.DecryptRequest) (*kmspb.DecryptResponse, error) {
	s.Decrypts.Add(1)
	g, err := s.check(ctx, "Decrypt", req.GetName())
	if err != nil {
		return nil, err
	}
	ct := req.GetCiphertext()
	if c := req.GetCiphertextCrc32C(); c != nil && c.GetValue() != crc(ct) {
		return nil, status.Error(codes.InvalidArgument, "ciphertext_crc32c did not match")
	}
	if len(ct) < g.NonceSize()+g.Overhead() {
		return nil, status.Error(codes.InvalidArgument, "Decryption failed: the ciphertext is invalid.")
	}
	pt, err := g.Open(nil, ct[:g.NonceSize()], ct[g.NonceSize():], aad(req.GetName(), req.GetAdditionalAuthenticatedData()))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "Decryption failed: the ciphertext is invalid.")
	}
	return &kmspb.DecryptResponse{Plaintext: pt, PlaintextCrc32C: wrapperspb.Int64(crc(pt)), UsedPrimary: true,
		ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE}, nil
}

func aad(name string, extra []byte) []byte {
	return append([]byte(fmt.Sprintf("%d:%s", len(name), name)), extra...)
}

func selfSigned() (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("gcpkmstest: " + err.Error())
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "gcpkmstest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic("gcpkmstest: " + err.Error())
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
