// Package vaulttest is a local server for Vault's transit encrypt and
// decrypt endpoints, as Vault documents them, for tests and the demo (a
// real Vault server cannot be built here).
package vaulttest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a transit engine at any mount path.
type Server struct {
	*httptest.Server
	Token string

	mu       sync.Mutex
	keys     map[string][][]byte // mount/name → versions
	kv       map[string]int      // KV mount → version
	secrets  map[string][]map[string]any
	KVWrites atomic.Int64
	Encrypts atomic.Int64
	Decrypts atomic.Int64
}

// New starts a server accepting token.
func New(token string) *Server {
	s := &Server{Token: token, keys: map[string][][]byte{}, kv: map[string]int{}, secrets: map[string][]map[string]any{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Restart serves again at the same address, with the same keys, after
// Close: a Vault outage and its end.
func (s *Server) Restart() error {
	addr := s.Listener.Addr().String()
	deadline := time.Now().Add(10 * time.Second)
	var l net.Listener
	var err error
	for {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	s.Server = srv
	return nil
}

// CreateKey creates (or rotates to a new version of) a key.
func (s *Server) CreateKey(mount, name string) {
	k := make([]byte, 32)
	rand.Read(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[mount+"/"+name] = append(s.keys[mount+"/"+name], k)
}

func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Token") != s.Token {
		fail(w, http.StatusForbidden, "permission denied")
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	if s.serveKV(w, r, p) {
		return
	}
	var op string
	var mount, name string
	for _, o := range []string{"/encrypt/", "/decrypt/"} {
		if i := strings.LastIndex(p, o); i > 0 {
			op, mount, name = o, p[:i], p[i+len(o):]
		}
	}
	if op == "" || (r.Method != http.MethodPost && r.Method != http.MethodPut) {
		fail(w, http.StatusNotFound, "unsupported path")
		return
	}
	var body map[string]string
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, "invalid JSON")
		return
	}
	s.mu.Lock()
	versions := s.keys[mount+"/"+name]
	s.mu.Unlock()
	if len(versions) == 0 {
		if op == "/encrypt/" {
			// Vault creates the key on first encrypt (upsert).
			s.CreateKey(mount, name)
			s.mu.Lock()
			versions = s.keys[mount+"/"+name]
			s.mu.Unlock()
		} else {
			fail(w, http.StatusBadRequest, "encryption key not found")
			return
		}
	}
	out := map[string]any{}
	switch op {
	case "/encrypt/":
		s.Encrypts.Add(1)
		pt, err := base64.StdEncoding.DecodeString(body["plaintext"])
		if err != nil {
			fail(w, http.StatusBadRequest, "failed to decode plaintext as base64")
			return
		}
		v := len(versions)
		gcm := aead(versions[v-1])
		nonce := make([]byte, gcm.NonceSize())
		rand.Read(nonce)
		ct := gcm.Seal(nonce, nonce, pt, nil)
		out["ciphertext"] = fmt.Sprintf("vault:v%d:%s", v, base64.StdEncoding.EncodeToString(ct))
		out["key_version"] = v
	case "/decrypt/":
		s.Decrypts.Add(1)
		parts := strings.SplitN(body["ciphertext"], ":", 3)
		if len(parts) != 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "v") {
			fail(w, http.StatusBadRequest, "invalid ciphertext: no prefix")
			return
		}
		v, err := strconv.Atoi(parts[1][1:])
		raw, err2 := base64.StdEncoding.DecodeString(parts[2])
		if err != nil || err2 != nil || v < 1 || v > len(versions) {
			fail(w, http.StatusBadRequest, "invalid ciphertext")
			return
		}
		gcm := aead(versions[v-1])
		if len(raw) < gcm.NonceSize() {
			fail(w, http.StatusBadRequest, "invalid ciphertext")
			return
		}
		pt, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], nil)
		if err != nil {
			fail(w, http.StatusBadRequest, "cipher: message authentication failed")
			return
		}
		out["plaintext"] = base64.StdEncoding.EncodeToString(pt)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"data": out})
}

func aead(k []byte) cipher.AEAD {
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	return g
}
