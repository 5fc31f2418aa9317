package vault

import (
	"context"
	"net/http"
	"reflect"
	"strings"
)

// KVPath is the API path (after /v1/) of the secret at path under a KV
// mount ("secret/", with its trailing slash): version 1 writes at
// mount+path, version 2 at mount+"data/"+path.
func KVPath(mount, path string, version int) string {
	if version == 1 {
		return mount + path
	}
	return mount + "data/" + path
}

// WriteKV writes data as the secret at apiPath (see KVPath) of the Vault
// at addr, with the token, namespace and allowlist of o. For KV version 2,
// a secret whose current version holds the same data is left alone (no new
// version), as sops's publish does; written says whether it wrote.
func (o Options) WriteKV(ctx context.Context, addr, apiPath string, version int, data map[string]any) (written bool, err error) {
	if addr == "" {
		addr = DefaultAddress
	}
	if version != 1 {
		cur, status, err := o.do(ctx, http.MethodGet, addr, apiPath, nil)
		if err == nil && status == http.StatusOK && reflect.DeepEqual(cur["data"], data) {
			return false, nil
		}
		if err != nil && status != http.StatusNotFound && !strings.Contains(err.Error(), "permission denied") {
			return false, err
		}
	}
	body := any(data)
	if version != 1 {
		body = map[string]any{"data": data}
	}
	if _, _, err := o.do(ctx, http.MethodPost, addr, apiPath, body); err != nil {
		return false, err
	}
	return true, nil
}

// DefaultAddress is Vault's address when neither a rule nor VAULT_ADDR
// gives one, as the Vault client's default.
const DefaultAddress = "https://127.0.0.1:8200"
