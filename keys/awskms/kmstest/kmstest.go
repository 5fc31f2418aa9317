// Package kmstest is a local server speaking AWS KMS's wire protocol (AWS
// JSON 1.1, X-Amz-Target TrentService.Encrypt and TrentService.Decrypt,
// SigV4-signed) and STS AssumeRole (AWS query protocol), for tests and the
// demo: cloud KMS cannot run here, so the official SDK talks to this.
//
// Ciphertext blobs name their key and are sealed with AES-GCM under a
// per-key secret, with the encryption context as additional data, so a
// wrong key, a wrong context or a flipped byte fail as they do on AWS.
package kmstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request records what a client sent.
type Request struct {
	Target    string            // "TrentService.Encrypt", "TrentService.Decrypt", "AssumeRole"
	KeyID     string            // KeyId as sent
	Context   map[string]string // EncryptionContext as sent
	AccessKey string            // access key id of the SigV4 credential scope
	Region    string            // region of the SigV4 credential scope
	Service   string            // service of the SigV4 credential scope
	RoleARN   string            // AssumeRole only
	Session   string            // AssumeRole RoleSessionName
}

// Server is a KMS + STS endpoint for one account.
type Server struct {
	*httptest.Server
	// AccessKeyID and SecretAccessKey are the credentials the server
	// accepts (plus those handed out by AssumeRole).
	AccessKeyID, SecretAccessKey string

	mu       sync.Mutex
	keys     map[string][]byte // key ARN → secret
	aliases  map[string]string // alias ARN → key ARN
	temp     map[string]string // temporary access key → role ARN
	requests []Request

	Encrypts, Decrypts, AssumeRoles atomic.Int64
}

// New starts a server.
func New() *Server {
	s := &Server{AccessKeyID: "AKIALACRETEST0000001", SecretAccessKey: "lacre-test-secret-access-key-0000000000",
		keys: map[string][]byte{}, aliases: map[string]string{}, temp: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

var arnRE = regexp.MustCompile(`^arn:aws[\w-]*:kms:([^:]+):([0-9]+):(key|alias)/(.+)$`)

// CreateKey creates a symmetric key and returns its ARN in region.
func (s *Server) CreateKey(region string) string {
	id := make([]byte, 16)
	rand.Read(id)
	h := hex.EncodeToString(id)
	arn := fmt.Sprintf("arn:aws:kms:%s:111122223333:key/%s-%s-%s-%s-%s", region, h[:8], h[8:12], h[12:16], h[16:20], h[20:])
	k := make([]byte, 32)
	rand.Read(k)
	s.mu.Lock()
	s.keys[arn] = k
	s.mu.Unlock()
	return arn
}

// CreateAlias points alias/<name> at keyARN and returns the alias ARN.
func (s *Server) CreateAlias(name, keyARN string) string {
	m := arnRE.FindStringSubmatch(keyARN)
	alias := fmt.Sprintf("arn:aws:kms:%s:%s:alias/%s", m[1], m[2], name)
	s.mu.Lock()
	s.aliases[alias] = keyARN
	s.mu.Unlock()
	return alias
}

// Requests returns what clients sent, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Last returns the latest request, or a zero Request.
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return Request{}
	}
	return s.requests[len(s.requests)-1]
}

func fail(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

var scopeRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		fail(w, http.StatusMethodNotAllowed, "UnsupportedOperation", "only POST")
		return
	}
	// SigV4: the Authorization header with its credential scope, and the
	// X-Amz-Date it signs, must be present.
	m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || r.Header.Get("X-Amz-Date") == "" || !strings.Contains(m[5], "x-amz-date") {
		fail(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Request is missing Authentication Token")
		return
	}
	req := Request{AccessKey: m[1], Region: m[3], Service: m[4]}
	s.mu.Lock()
	_, isTemp := s.temp[req.AccessKey]
	s.mu.Unlock()
	if req.AccessKey != s.AccessKeyID && !isTemp {
		fail(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	if isTemp && r.Header.Get("X-Amz-Security-Token") == "" {
		fail(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		fail(w, http.StatusBadRequest, "SerializationException", "unreadable body")
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.assumeRole(w, req, body)
		return
	}
	req.Target = r.Header.Get("X-Amz-Target")
	if r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		fail(w, http.StatusBadRequest, "SerializationException", "expected application/x-amz-json-1.1")
		return
	}
	var in kmsInput
	if err := json.Unmarshal(body, &in); err != nil {
		fail(w, http.StatusBadRequest, "SerializationException", "invalid JSON")
		return
	}
	req.KeyID, req.Context = in.KeyId, in.EncryptionContext
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	if req.Service != "kms" {
		fail(w, http.StatusBadRequest, "InvalidSignatureException", "credential scope names service "+req.Service)
		return
	}
	switch req.Target {
	case "TrentService.Encrypt":
		s.Encrypts.Add(1)
		s.encrypt(w, req, in)
	case "TrentService.Decrypt":
		s.Decrypts.Add(1)
		s.decrypt(w, in)
	default:
		fail(w, http.StatusBadRequest, "UnknownOperationException", "")
	}
}

// kmsInput is the JSON body of an Encrypt or Decrypt call.
type kmsInput struct {
	KeyId             string
	Plaintext         []byte
	CiphertextBlob    []byte
	EncryptionContext map[string]string
}

// encrypt answers TrentService.Encrypt.
func (s *Server) encrypt(w http.ResponseWriter, req Request, in kmsInput) {
	arn, key, ok := s.resolve(in.KeyId)
	if !ok {
		fail(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", in.KeyId))
		return
	}
	if region(arn) != req.Region {
		fail(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Key '%s' does not exist in %s", in.KeyId, req.Region))
		return
	}
	if len(in.Plaintext) == 0 || len(in.Plaintext) > 4096 {
		fail(w, http.StatusBadRequest, "ValidationException", "plaintext must be 1 to 4096 bytes")
		return
	}
	blob := make([]byte, 2, 2+len(arn)+12+len(in.Plaintext)+16)
	binary.BigEndian.PutUint16(blob, uint16(len(arn)))
	blob = append(blob, arn...)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	blob = append(blob, nonce...)
	blob = aead(key).Seal(blob, nonce, in.Plaintext, contextAAD(in.EncryptionContext))
	reply(w, map[string]any{"CiphertextBlob": blob, "KeyId": arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
}

// decrypt answers TrentService.Decrypt.
func (s *Server) decrypt(w http.ResponseWriter, in kmsInput) {
	b := in.CiphertextBlob
	if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b))+12+16 {
		fail(w, http.StatusBadRequest, "InvalidCiphertextException", "")
		return
	}
	n := int(binary.BigEndian.Uint16(b))
	arn := string(b[2 : 2+n])
	s.mu.Lock()
	key, ok := s.keys[arn]
	s.mu.Unlock()
	if !ok {
		fail(w, http.StatusBadRequest, "InvalidCiphertextException", "")
		return
	}
	if in.KeyId != "" {
		if want, _, ok := s.resolve(in.KeyId); !ok || want != arn {
			fail(w, http.StatusBadRequest, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
			return
		}
	}
	nonce := b[2+n : 2+n+12]
	pt, err := aead(key).Open(nil, nonce, b[2+n+12:], contextAAD(in.EncryptionContext))
	if err != nil {
		fail(w, http.StatusBadRequest, "InvalidCiphertextException", "")
		return
	}
	reply(w, map[string]any{"Plaintext": pt, "KeyId": arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
}

func (s *Server) resolve(id string) (arn string, key []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.aliases[id]; ok {
		id = a
	}
	key, ok = s.keys[id]
	return id, key, ok
}

func region(arn string) string {
	if m := arnRE.FindStringSubmatch(arn); m != nil {
		return m[1]
	}
	return ""
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(v)
}

// contextAAD canonicalises an encryption context (sorted key=value lines).
func contextAAD(c map[string]string) []byte {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(c)) {
		fmt.Fprintf(&b, "%q=%q\n", k, c[k])
	}
	return []byte(b.String())
}

func aead(k []byte) cipher.AEAD {
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	return g
}

var roleRE = regexp.MustCompile(`^arn:aws[\w-]*:iam::[0-9]+:role/.+$`)

// assumeRole answers STS AssumeRole (query protocol, XML response).
func (s *Server) assumeRole(w http.ResponseWriter, req Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	xmlErr := func(code int, typ, msg string) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(code)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>0</RequestId></ErrorResponse>`, typ, xmlEscape(msg))
	}
	if err != nil || form.Get("Action") != "AssumeRole" {
		xmlErr(http.StatusBadRequest, "InvalidAction", "only AssumeRole")
		return
	}
	req.Target, req.RoleARN, req.Session = "AssumeRole", form.Get("RoleArn"), form.Get("RoleSessionName")
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	s.AssumeRoles.Add(1)
	if req.Service != "sts" {
		xmlErr(http.StatusBadRequest, "InvalidSignatureException", "credential scope names service "+req.Service)
		return
	}
	if !roleRE.MatchString(req.RoleARN) || req.Session == "" || len(req.Session) > 64 {
		xmlErr(http.StatusForbidden, "AccessDenied", "not authorized to perform sts:AssumeRole")
		return
	}
	id := make([]byte, 8)
	rand.Read(id)
	akid := "ASIA" + strings.ToUpper(hex.EncodeToString(id))
	s.mu.Lock()
	s.temp[akid] = req.RoleARN
	s.mu.Unlock()
	secret := base64.RawStdEncoding.EncodeToString(append(id, id...))
	token := base64.StdEncoding.EncodeToString(append(append(id, id...), id...))
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROA0000:%s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
		akid, secret, token, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), xmlEscape(req.RoleARN), xmlEscape(req.Session), xmlEscape(req.Session))
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
