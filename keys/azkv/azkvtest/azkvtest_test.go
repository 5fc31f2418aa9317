package azkvtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestWire checks the server's answers to raw requests: the bearer
// challenge, unknown keys, wrong algorithms, bad ciphertext, and bounded
// bodies.
func TestWire(t *testing.T) {
	srv := New("tok")
	defer srv.Close()
	v := srv.CreateKey("k")
	hc := srv.Client()
	do := func(method, path, token, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &out)
		return resp.StatusCode, resp.Header, out
	}
	code, h, _ := do("GET", "/keys/k?api-version=2025-07-01", "", "")
	if code != 401 || h.Get("WWW-Authenticate") != `Bearer authorization="https://login.microsoftonline.com/`+srv.Tenant+`", resource="https://vault.azure.net"` {
		t.Errorf("challenge: %d %q", code, h.Get("WWW-Authenticate"))
	}
	if code, _, _ := do("GET", "/keys/k?api-version=2025-07-01", "other", ""); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	code, _, out := do("GET", "/keys/k?api-version=2025-07-01", "tok", "")
	key, _ := out["key"].(map[string]any)
	if code != 200 || key["kid"] != srv.KeyURL("k", v) || key["kty"] != "RSA" || key["n"] == "" {
		t.Errorf("get: %d %v", code, out)
	}
	code, _, out = do("GET", "/keys/missing/?api-version=2025-07-01", "tok", "")
	if e, _ := out["error"].(map[string]any); code != 404 || e["code"] != "KeyNotFound" {
		t.Errorf("unknown key: %d %v", code, out)
	}
	if code, _, _ := do("POST", "/keys/k/"+v+"/encrypt", "tok", `{"alg":"RSA-OAEP-256","value":"AAAA"}`); code != 400 {
		t.Errorf("no api-version: %d", code)
	}
	enc := "/keys/k/" + v + "/encrypt?api-version=2025-07-01"
	dec := "/keys/k/" + v + "/decrypt?api-version=2025-07-01"
	for _, alg := range []string{"RSA1_5", "RSA-OAEP", ""} {
		if code, _, _ := do("POST", enc, "tok", `{"alg":"`+alg+`","value":"AAAA"}`); code != 400 || srv.Last().Alg != alg {
			t.Errorf("alg %q: %d", alg, code)
		}
	}
	code, _, out = do("POST", enc, "tok", `{"alg":"RSA-OAEP-256","value":"c2VjcmV0"}`)
	ct, _ := out["value"].(string)
	if code != 200 || out["kid"] != srv.KeyURL("k", v) || len(ct) != 342 || strings.Contains(ct, "=") {
		t.Fatalf("encrypt: %d %v", code, out)
	}
	if srv.Last() != (Request{Op: "encrypt", Name: "k", Version: v, Alg: "RSA-OAEP-256"}) {
		t.Errorf("last: %+v", srv.Last())
	}
	if code, _, out := do("POST", dec, "tok", `{"alg":"RSA-OAEP-256","value":"`+ct+`"}`); code != 200 || out["value"] != "c2VjcmV0" {
		t.Errorf("decrypt: %d %v", code, out)
	}
	if code, _, out := do("POST", "/keys/k//decrypt?api-version=1", "tok", `{"alg":"RSA-OAEP-256","value":"`+ct+`"}`); code != 200 || out["value"] != "c2VjcmV0" {
		t.Errorf("decrypt with the latest version: %d %v", code, out)
	}
	bad := []byte(ct)
	bad[100] ^= 1
	if code, _, _ := do("POST", dec, "tok", `{"alg":"RSA-OAEP-256","value":"`+string(bad)+`"}`); code != 400 {
		t.Errorf("bad ciphertext: %d", code)
	}
	if code, _, _ := do("POST", dec, "tok", `{"alg":"RSA-OAEP-256","value":"!!"}`); code != 400 {
		t.Errorf("bad base64: %d", code)
	}
	big := `{"alg":"RSA-OAEP-256","value":"` + string(bytes.Repeat([]byte("A"), 2<<20)) + `"}`
	if code, _, _ := do("POST", dec, "tok", big); code != 400 {
		t.Errorf("oversized body: %d", code)
	}
	if code, _, _ := do("POST", "/keys/k/"+v+"/sign?api-version=1", "tok", `{}`); code != 404 {
		t.Errorf("unsupported op: %d", code)
	}
	// Entra: a token only for the configured client.
	srv.ClientID, srv.ClientSecret = "cid", "csecret"
	form := func(secret string) int {
		resp, err := hc.PostForm(srv.URL+"/tenant/oauth2/v2.0/token", map[string][]string{
			"grant_type": {"client_credentials"}, "client_id": {"cid"}, "client_secret": {secret}, "scope": {"x/.default"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if form("csecret") != 200 || form("nope") != 401 || srv.TokensIssued.Load() != 1 {
		t.Errorf("token endpoint: issued %d", srv.TokensIssued.Load())
	}
}
