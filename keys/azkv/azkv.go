// Package azkv implements Azure Key Vault master keys (stanza type
// "azure_kv") with the Azure SDK for Go (azkeys, azcore, azidentity), the
// way sops does: the data key is encrypted with RSA-OAEP-256 by the vault and
// the result is stored base64url-encoded without padding.
//
// The library reads no environment: the caller supplies the credential (or
// nil for azidentity's default credential chain, which itself consults the
// process environment, managed identity and workload identity).
package azkv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keyref"
)

// Options configure access to Azure Key Vault.
type Options struct {
	// Credential authenticates to Key Vault. Nil uses
	// azidentity.NewDefaultAzureCredential (environment service principal,
	// workload identity, managed identity, Azure CLI, ...).
	Credential azcore.TokenCredential
	// ClientOptions are passed to azkeys.NewClient (transport, retries,
	// cloud, DisableChallengeResourceVerification). Nil uses the defaults.
	ClientOptions *azkeys.ClientOptions
}

func (o Options) describe() string {
	if o.Credential == nil {
		return "azure key vault credentials (default chain)"
	}
	return "azure key vault credentials (explicit)"
}

// clients caches one azkeys client per vault URL; it is safe for
// concurrent use.
type clients struct {
	opts Options

	mu   sync.Mutex
	cred azcore.TokenCredential
	m    map[string]*azkeys.Client
}

func newClients(opts Options) *clients {
	return &clients{opts: opts, m: map[string]*azkeys.Client{}}
}

func (c *clients) get(vaultURL string) (*azkeys.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[vaultURL]; ok {
		return cl, nil
	}
	if c.cred == nil {
		c.cred = c.opts.Credential
		if c.cred == nil {
			var dopts *azidentity.DefaultAzureCredentialOptions
			if c.opts.ClientOptions != nil {
				// Same transport and cloud for token requests.
				dopts = &azidentity.DefaultAzureCredentialOptions{ClientOptions: c.opts.ClientOptions.ClientOptions}
			}
			cred, err := azidentity.NewDefaultAzureCredential(dopts)
			if err != nil {
				return nil, fmt.Errorf("azure key vault %q: default azure credential: %v", vaultURL, err)
			}
			c.cred = cred
		}
	}
	cl, err := azkeys.NewClient(vaultURL, c.cred, c.opts.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("azure key vault %q: %v", vaultURL, err)
	}
	c.m[vaultURL] = cl
	return cl, nil
}

// keyURL is the key's public identity as sops prints it.
func keyURL(vaultURL, name, version string) string {
	return vaultURL + "/keys/" + name + "/" + version
}

// callError describes a failed SDK call without the response body (which
// could echo request details) and without credential material.
func callError(op, key string, err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			code = "unknown error"
		}
		hint := ""
		switch re.StatusCode {
		case 401, 403:
			hint = " (check the credential and the key's access policy or RBAC role)"
		case 404:
			hint = " (no such key or version)"
		}
		return fmt.Errorf("azure key vault %s with key %q: HTTP %d %s%s", op, key, re.StatusCode, code, hint)
	}
	var ae *azidentity.AuthenticationFailedError
	if errors.As(err, &ae) {
		return fmt.Errorf("azure key vault %s with key %q: authentication failed: %s", op, key, oneLine(ae.Error(), 800))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("azure key vault %s with key %q: %w", op, key, err)
	}
	// Credential chain errors (DefaultAzureCredential) list each source's
	// reason on its own line; SDK errors never hold the request body.
	return fmt.Errorf("azure key vault %s with key %q: %v", op, key, oneLine(err.Error(), 800))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return oneLine(s, 300)
}

func oneLine(s string, max int) string {
	var words []string
	for _, w := range strings.Fields(s) {
		if strings.Trim(w, "-") != "" { // drop the SDK's ----- separator lines
			words = append(words, w)
		}
	}
	s = strings.Join(words, " ")
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

var (
	_ keys.Recipient = (*Recipient)(nil)
	_ keys.Identity  = (*Identity)(nil)
	_ keys.Describer = (*Recipient)(nil)
	_ keys.Describer = (*Identity)(nil)
)

// Recipient wraps data keys with one Key Vault key.
type Recipient struct {
	vaultURL, name string
	clients        *clients

	mu      sync.Mutex
	version string // resolved on first Wrap when the URL has none
}

// NewRecipient parses a key URL
// (https://<vault>.vault.azure.net/keys/<name>[/<version>]). Without a
// version, the first Wrap resolves the key's current version, so the stanza
// names a concrete version as sops's does.
func NewRecipient(keyURL string, opts Options) (*Recipient, error) {
	vaultURL, name, version, err := keyref.ParseAzureKeyURL(strings.TrimSpace(keyURL))
	if err != nil {
		return nil, err
	}
	return &Recipient{vaultURL: vaultURL, name: name, version: version, clients: newClients(opts)}, nil
}

// RecipientFromStanza returns the recipient of an existing azure_kv stanza.
func RecipientFromStanza(s *keys.Stanza, opts Options) (keys.Recipient, error) {
	if s == nil || s.Type != keys.TypeAzureKV {
		return nil, errors.New("not an azure_kv stanza")
	}
	vaultURL, name := strings.TrimSuffix(s.Field("vault_url"), "/"), s.Field("name")
	if vaultURL == "" || name == "" {
		return nil, fmt.Errorf("azure_kv stanza %q lacks vault_url or name", s.ID())
	}
	return &Recipient{vaultURL: vaultURL, name: name, version: s.Field("version"), clients: newClients(opts)}, nil
}

// Describe implements keys.Describer.
func (r *Recipient) Describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "azure key vault key " + keyURL(r.vaultURL, r.name, r.version)
}

// resolveVersion returns the key version, asking the vault for the current
// one the first time when the URL named none.
func (r *Recipient) resolveVersion(ctx context.Context, cl *azkeys.Client) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.version != "" {
		return r.version, nil
	}
	resp, err := cl.GetKey(ctx, r.name, "", nil)
	if err != nil {
		return "", callError("get key", keyURL(r.vaultURL, r.name, ""), err)
	}
	var v string
	if resp.Key != nil && resp.Key.KID != nil {
		v = resp.Key.KID.Version()
	}
	if v == "" {
		return "", fmt.Errorf("azure key vault get key %q: the response names no key version", keyURL(r.vaultURL, r.name, ""))
	}
	r.version = v
	return v, nil
}

// Wrap encrypts the data key with the Key Vault key (RSA-OAEP-256).
func (r *Recipient) Wrap(ctx context.Context, dataKey []byte) (*keys.Stanza, error) {
	cl, err := r.clients.get(r.vaultURL)
	if err != nil {
		return nil, err
	}
	version, err := r.resolveVersion(ctx, cl)
	if err != nil {
		return nil, err
	}
	key := keyURL(r.vaultURL, r.name, version)
	resp, err := cl.Encrypt(ctx, r.name, version, azkeys.KeyOperationParameters{
		Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256),
		Value:     dataKey,
	}, nil)
	if err != nil {
		return nil, callError("encrypt", key, err)
	}
	if len(resp.Result) == 0 {
		return nil, fmt.Errorf("azure key vault encrypt with key %q: empty result", key)
	}
	return &keys.Stanza{
		Type:      keys.TypeAzureKV,
		Fields:    map[string]string{"vault_url": r.vaultURL, "name": r.name, "version": version},
		CreatedAt: time.Now().UTC().Format(time.RFC3339),
		Enc:       base64.RawURLEncoding.EncodeToString(resp.Result),
	}, nil
}

// Identity unwraps any azure_kv stanza the credential may decrypt with.
type Identity struct {
	clients *clients
}

// NewIdentity returns an identity that asks Key Vault to decrypt.
func NewIdentity(opts Options) *Identity { return &Identity{clients: newClients(opts)} }

// Describe implements keys.Describer (never credential material).
func (i *Identity) Describe() string { return i.clients.opts.describe() }

// StanzaType implements keys.Typed.
func (i *Identity) StanzaType() string { return keys.TypeAzureKV }

// Unwrap decrypts an azure_kv stanza with Key Vault (RSA-OAEP-256).
func (i *Identity) Unwrap(ctx context.Context, s *keys.Stanza) ([]byte, error) {
	if s == nil || s.Type != keys.TypeAzureKV {
		return nil, keys.ErrIncorrectIdentity
	}
	vaultURL, name, version := strings.TrimSuffix(s.Field("vault_url"), "/"), s.Field("name"), s.Field("version")
	key := keyURL(vaultURL, name, version)
	if vaultURL == "" || name == "" {
		return nil, fmt.Errorf("azure_kv stanza %q lacks vault_url or name", key)
	}
	if _, _, _, err := keyref.ParseAzureKeyURL(vaultURL + "/keys/" + name); err != nil {
		return nil, fmt.Errorf("azure_kv stanza %q: invalid vault_url or name", key)
	}
	ct, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s.Enc, "="))
	if err != nil || len(ct) == 0 {
		return nil, fmt.Errorf("azure key vault decrypt with key %q: enc is not base64url", key)
	}
	cl, err := i.clients.get(vaultURL)
	if err != nil {
		return nil, err
	}
	resp, err := cl.Decrypt(ctx, name, version, azkeys.KeyOperationParameters{
		Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256),
		Value:     ct,
	}, nil)
	if err != nil {
		return nil, callError("decrypt", key, err)
	}
	if len(resp.Result) == 0 {
		return nil, fmt.Errorf("azure key vault decrypt with key %q: empty result", key)
	}
	return resp.Result, nil
}
