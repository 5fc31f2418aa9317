// Package vault implements HashiCorp Vault transit master keys over Vault's
// documented HTTP API (POST /v1/{mount}/encrypt/{key} and /decrypt/{key}
// with an X-Vault-Token header). The library reads no environment: the
// caller supplies the token and the address allowlist.
package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/keyref"
)

// Options configure requests to Vault.
type Options struct {
	// Token authenticates to Vault (never printed).
	Token string
	// Allowlist holds the Vault addresses that may be contacted (see
	// AddressAllowed); nil allows every address, an empty non-nil list
	// none (like SOPS_HC_VAULT_ALLOWLIST). An address with user
	// information is refused whatever the list.
	Allowlist []string
	// AllowHint, when set, ends the error for an address outside the
	// allowlist: how to allow it.
	AllowHint string
	// Namespace is sent as X-Vault-Namespace when set.
	Namespace  string
	HTTPClient *http.Client
}

func (o Options) call(ctx context.Context, addr, path string, body any) (map[string]any, error) {
	data, _, err := o.do(ctx, http.MethodPost, addr, path, body)
	return data, err
}

// do sends one request (a GET when body is nil) and returns the response's
// data and HTTP status.
func (o Options) do(ctx context.Context, method, addr, path string, body any) (map[string]any, int, error) {
	target := strings.TrimSuffix(addr, "/") + "/v1/" + path
	if err := AddressAllowed(o.Allowlist, target); err != nil {
		if errors.Is(err, ErrNotAllowed) && o.AllowHint != "" {
			err = fmt.Errorf("%w (%s)", err, o.AllowHint)
		}
		return nil, 0, err
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Vault-Token", o.Token)
	if o.Namespace != "" {
		req.Header.Set("X-Vault-Namespace", o.Namespace)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("vault %s: %v", addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, err
	}
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []string       `json:"errors"`
	}
	_ = json.Unmarshal(raw, &out)
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return nil, resp.StatusCode, fmt.Errorf("vault %s: permission denied for %s (check the token and its policy)", addr, path)
	case resp.StatusCode >= 300:
		msg := strings.Join(out.Errors, "; ")
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return nil, resp.StatusCode, fmt.Errorf("vault %s: %s: HTTP %d: %s", addr, path, resp.StatusCode, msg)
	}
	return out.Data, resp.StatusCode, nil
}

// Recipient wraps data keys with one transit key.
type Recipient struct {
	addr, engine, key string
	opts              Options
}

var (
	_ keys.Recipient = (*Recipient)(nil)
	_ keys.Identity  = (*Identity)(nil)
)

// NewRecipient parses a transit key URI
// (https://vault:8200/v1/<engine>/keys/<name>).
func NewRecipient(uri string, opts Options) (*Recipient, error) {
	addr, engine, key, err := keyref.ParseVaultURI(uri)
	if err != nil {
		return nil, err
	}
	return &Recipient{addr: addr, engine: engine, key: key, opts: opts}, nil
}

// RecipientFromStanza returns the recipient of an existing stanza.
func RecipientFromStanza(s *keys.Stanza, opts Options) (keys.Recipient, error) {
	if s.Type != keys.TypeVault {
		return nil, errors.New("not a vault stanza")
	}
	return &Recipient{addr: s.Field("vault_address"), engine: s.Field("engine_path"), key: s.Field("key_name"), opts: opts}, nil
}

// Describe implements keys.Describer.
func (r *Recipient) Describe() string {
	return "vault transit key " + r.addr + "/v1/" + r.engine + "/keys/" + r.key
}

// Wrap encrypts the data key with Vault.
func (r *Recipient) Wrap(ctx context.Context, dataKey []byte) (*keys.Stanza, error) {
	data, err := r.opts.call(ctx, r.addr, r.engine+"/encrypt/"+r.key, map[string]string{"plaintext": base64.StdEncoding.EncodeToString(dataKey)})
	if err != nil {
		return nil, err
	}
	ct, _ := data["ciphertext"].(string)
	if ct == "" {
		return nil, fmt.Errorf("vault %s: no ciphertext in the response", r.addr)
	}
	return &keys.Stanza{Type: keys.TypeVault, CreatedAt: time.Now().UTC().Format(time.RFC3339), Enc: ct,
		Fields: map[string]string{"vault_address": r.addr, "engine_path": r.engine, "key_name": r.key}}, nil
}

// Identity unwraps any transit stanza whose Vault is allowed, with a token.
type Identity struct {
	opts Options
}

// NewIdentity returns an identity that asks Vault to decrypt.
func NewIdentity(opts Options) *Identity { return &Identity{opts: opts} }

// Describe implements keys.Describer (never the token).
func (i *Identity) Describe() string { return "vault token" }

// StanzaType implements keys.Typed.
func (i *Identity) StanzaType() string { return keys.TypeVault }

// Unwrap decrypts a transit stanza with Vault.
func (i *Identity) Unwrap(ctx context.Context, s *keys.Stanza) ([]byte, error) {
	if s.Type != keys.TypeVault {
		return nil, keys.ErrIncorrectIdentity
	}
	addr := s.Field("vault_address")
	data, err := i.opts.call(ctx, addr, s.Field("engine_path")+"/decrypt/"+s.Field("key_name"), map[string]string{"ciphertext": s.Enc})
	if err != nil {
		return nil, err
	}
	pt, _ := data["plaintext"].(string)
	key, err := base64.StdEncoding.DecodeString(pt)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("vault %s: malformed plaintext in the response", addr)
	}
	return key, nil
}
