// Package azkvtest is a local HTTPS server speaking the part of the Azure
// Key Vault keys REST API that sops and lacre use (get key, encrypt,
// decrypt with RSA-OAEP-256), with Key Vault's bearer-token challenge, plus a
// minimal Microsoft Entra token endpoint (OpenID discovery and the
// client-credentials grant) so that azidentity credentials, including the
// sops CLI's DefaultAzureCredential, can obtain a token from it. It is for
// tests and demos: the real services cannot be reached here.
package azkvtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

const maxBody = 1 << 20

// Request is what the server saw in the last key operation.
type Request struct {
	Op      string // "get", "encrypt" or "decrypt"
	Name    string
	Version string // as requested; "" for the latest
	Alg     string
}

// Server is a Key Vault (any key name) and an Entra token endpoint.
type Server struct {
	*httptest.Server

	// Configuration; set before the first request.

	// Token is the bearer token Key Vault accepts and the token endpoint
	// issues.
	Token string
	// Tenant is named in the challenge's authorization URL. "adfs" makes
	// azidentity skip Entra instance discovery (which would contact
	// login.microsoftonline.com).
	Tenant string
	// AuthorityHost is the challenge's authorization host; default
	// https://login.microsoftonline.com.
	AuthorityHost string
	// Resource is the challenge's resource; default https://vault.azure.net.
	Resource string
	// ClientID and ClientSecret are what the token endpoint accepts.
	ClientID, ClientSecret string

	mu   sync.Mutex
	keys map[string][]version
	last Request

	Encrypts, Decrypts, Gets, Challenges, TokensIssued atomic.Int64
}

type version struct {
	id   string
	priv *rsa.PrivateKey
}

// New starts a TLS server accepting token.
func New(token string) *Server {
	s := &Server{Token: token, Tenant: "00000000-0000-0000-0000-000000000001",
		AuthorityHost: "https://login.microsoftonline.com", Resource: "https://vault.azure.net",
		keys: map[string][]version{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// CreateKey creates a key, or a new version of it, and returns the
// version.
func (s *Server) CreateKey(name string) string {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b := make([]byte, 16)
	rand.Read(b)
	v := hex.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[name] = append(s.keys[name], version{id: v, priv: priv})
	return v
}

// KeyURL returns https://127.0.0.1:port/keys/name[/version].
func (s *Server) KeyURL(name, version string) string {
	u := s.URL + "/keys/" + name
	if version != "" {
		u += "/" + version
	}
	return u
}

// Last returns the last key operation the server received.
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// CertPEM returns the server's certificate, for SSL_CERT_FILE.
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// ClientOptions returns azkeys client options trusting the server's
// certificate, without retries, and without the challenge resource check
// (the server is not a *.vault.azure.net host).
func (s *Server) ClientOptions() *azkeys.ClientOptions {
	return &azkeys.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: s.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableChallengeResourceVerification: true,
	}
}

// StaticCredential is an azcore.TokenCredential returning a fixed token.
type StaticCredential struct {
	Token string

	mu     sync.Mutex
	scopes []string
	tenant string
}

// GetToken implements azcore.TokenCredential.
func (c *StaticCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.scopes, c.tenant = o.Scopes, o.TenantID
	c.mu.Unlock()
	return azcore.AccessToken{Token: c.Token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Requested returns the scopes and tenant of the last token request.
func (c *StaticCredential) Requested() ([]string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scopes, c.tenant
}

func kvError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-keyvault-service-version", "1.9.0.0")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": errCode, "message": msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/keys/") {
		s.serveKeys(w, r)
		return
	}
	s.serveEntra(w, r)
}

func (s *Server) challenge(w http.ResponseWriter) {
	s.Challenges.Add(1)
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`,
		strings.TrimSuffix(s.AuthorityHost, "/"), s.Tenant, s.Resource))
	kvError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request) {
	if auth := r.Header.Get("Authorization"); auth != "Bearer "+s.Token {
		s.challenge(w)
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		kvError(w, http.StatusBadRequest, "BadParameter", "The api-version query parameter is required.")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/keys/"), "/")
	var op, name, ver string
	switch {
	case r.Method == http.MethodGet && len(parts) <= 2:
		op, name = "get", parts[0]
		if len(parts) == 2 {
			ver = parts[1]
		}
	case r.Method == http.MethodPost && len(parts) >= 2 && len(parts) <= 3 &&
		(parts[len(parts)-1] == "encrypt" || parts[len(parts)-1] == "decrypt"):
		op, name = parts[len(parts)-1], parts[0]
		if len(parts) == 3 {
			ver = parts[1]
		}
	default:
		kvError(w, http.StatusNotFound, "NotFound", "unsupported operation")
		return
	}
	var req struct {
		Alg   string `json:"alg"`
		Value string `json:"value"`
	}
	if op != "get" {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
			kvError(w, http.StatusBadRequest, "BadParameter", "invalid JSON body")
			return
		}
	}
	s.mu.Lock()
	s.last = Request{Op: op, Name: name, Version: ver, Alg: req.Alg}
	var key *version
	vs := s.keys[name]
	for i := range vs {
		if vs[i].id == ver || (ver == "" && i == len(vs)-1) {
			key = &vs[i]
		}
	}
	s.mu.Unlock()
	if key == nil {
		kvError(w, http.StatusNotFound, "KeyNotFound", fmt.Sprintf("A key with (name/id) %s was not found in this key vault.", name))
		return
	}
	kid := "https://" + r.Host + "/keys/" + name + "/" + key.id
	if op == "get" {
		s.Gets.Add(1)
		writeJSON(w, map[string]any{
			"key": map[string]any{"kid": kid, "kty": "RSA", "key_ops": []string{"encrypt", "decrypt", "wrapKey", "unwrapKey"},
				"n": b64(key.priv.N.Bytes()), "e": b64(big.NewInt(int64(key.priv.E)).Bytes())},
			"attributes": map[string]any{"enabled": true, "created": time.Now().Unix(), "recoveryLevel": "Recoverable"},
		})
		return
	}
	if req.Alg != "RSA-OAEP-256" {
		kvError(w, http.StatusBadRequest, "BadParameter", "Unsupported or invalid algorithm for this key in this test server.")
		return
	}
	in, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(req.Value, "="))
	if err != nil {
		kvError(w, http.StatusBadRequest, "BadParameter", "Property value is not valid base64url.")
		return
	}
	var out []byte
	if op == "encrypt" {
		s.Encrypts.Add(1)
		out, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, &key.priv.PublicKey, in, nil)
	} else {
		s.Decrypts.Add(1)
		out, err = rsa.DecryptOAEP(sha256.New(), nil, key.priv, in, nil)
	}
	if err != nil {
		kvError(w, http.StatusBadRequest, "BadParameter", "The parameter is incorrect.")
		return
	}
	writeJSON(w, map[string]string{"kid": kid, "value": b64(out)})
}

// serveEntra answers OpenID discovery and the client-credentials token
// request for any tenant, at /{tenant}/v2.0/... (Entra ID) and /adfs/...
// (AD FS, which azidentity uses without instance discovery).
func (s *Server) serveEntra(w http.ResponseWriter, r *http.Request) {
	p := strings.Trim(r.URL.Path, "/")
	base := "https://" + r.Host
	switch {
	case r.Method == http.MethodGet && p == "adfs/.well-known/openid-configuration":
		writeJSON(w, map[string]any{
			"token_endpoint":         base + "/adfs/oauth2/token",
			"authorization_endpoint": base + "/adfs/oauth2/authorize",
			"issuer":                 base + "/adfs",
		})
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/v2.0/.well-known/openid-configuration"):
		tenant := strings.SplitN(p, "/", 2)[0]
		writeJSON(w, map[string]any{
			"token_endpoint":         base + "/" + tenant + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/" + tenant + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/" + tenant + "/v2.0",
		})
	case r.Method == http.MethodGet && p == "common/discovery/instance":
		ae := r.URL.Query().Get("authorization_endpoint")
		tenant := ""
		if f := strings.Split(strings.TrimPrefix(ae, "https://"), "/"); len(f) > 1 {
			tenant = f[1]
		}
		writeJSON(w, map[string]any{
			"tenant_discovery_endpoint": base + "/" + tenant + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata":                  []any{map[string]any{"preferred_network": r.Host, "preferred_cache": r.Host, "aliases": []string{r.Host}}},
		})
	case r.Method == http.MethodPost && (strings.HasSuffix(p, "/oauth2/v2.0/token") || p == "adfs/oauth2/token"):
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if r.PostForm.Get("grant_type") != "client_credentials" ||
			r.PostForm.Get("client_id") != s.ClientID || s.ClientSecret == "" || r.PostForm.Get("client_secret") != s.ClientSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]any{"error": "invalid_client",
				"error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": []int{7000215}})
			return
		}
		s.TokensIssued.Add(1)
		writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": s.Token})
	default:
		http.NotFound(w, r)
	}
}
