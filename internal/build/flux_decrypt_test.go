package build

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sopsfile"
)

// fluxObjects: an encrypted Secret, an encrypted Secret annotated
// decrypt: disabled (in clear, as encrypted_regex leaves metadata), an
// encrypted SopsSecret custom resource, a secretGenerator reading an
// encrypted dotenv file named secrets.txt, and a configMapGenerator
// reading an encrypted file.
func fluxObjects(t *testing.T) (artifact.Files, keys.Identity) {
	id, _ := age.GenerateX25519Identity()
	ours, _ := agekeys.ParseIdentity(id.String())
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	data := sopsfile.Rules{EncryptedRegex: "^(data|stringData|spec)$"}
	secret := func(name, ann string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n" + ann + "stringData:\n  password: " + canary + "\n"
	}
	return artifact.Files{
		"app/kustomization.yaml": []byte("resources:\n  - secret.yaml\n  - kept.yaml\n  - sopssecret.yaml\n" +
			"secretGenerator:\n  - name: gen\n    envs:\n      - secrets.txt\n" +
			"configMapGenerator:\n  - name: cfg\n    files:\n      - settings.json\n"),
		"app/secret.yaml":     encrypt(t, r, "secret.yaml", secret("db", ""), data),
		"app/kept.yaml":       encrypt(t, r, "kept.yaml", secret("kept", "  annotations:\n    kustomize.toolkit.fluxcd.io/decrypt: \"Disabled\"\n"), data),
		"app/sopssecret.yaml": encrypt(t, r, "sopssecret.yaml", "apiVersion: isindir.github.com/v1alpha3\nkind: SopsSecret\nmetadata:\n  name: op\nspec:\n  secretTemplates:\n    - name: x\n      stringData:\n        k: "+canary+"\n", data),
		"app/secrets.txt":     encrypt(t, r, "secrets.env", "API_KEY="+canary+"\n", sopsfile.Rules{}),
		"app/settings.json":   encrypt(t, r, "settings.json", `{"token": "`+canary+`"}`, sopsfile.Rules{}),
	}, ours
}

// TestDecryptLikeFlux: with decryption configured every encrypted object
// is decrypted except those annotated decrypt: disabled (any case), which
// are applied as they are; a secretGenerator envs file without the .env
// extension is read as dotenv; configMapGenerator inputs stay as they are.
func TestDecryptLikeFlux(t *testing.T) {
	files, id := fluxObjects(t)
	res, err := Build(context.Background(), files, Options{Path: "app", Decrypt: true, Identities: []keys.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	if db := find(res, "Secret", "db"); db["stringData"].(map[string]any)["password"] != canary {
		t.Errorf("db: %v", db)
	}
	if op := find(res, "SopsSecret", "op"); op == nil || op["sops"] != nil || !strings.Contains(toJSON(t, op), canary) {
		t.Errorf("SopsSecret not decrypted with decryption configured: %v", op)
	}
	kept := find(res, "Secret", "kept")
	if kept["sops"] == nil || strings.Contains(toJSON(t, kept), canary) {
		t.Errorf("decrypt: Disabled Secret was decrypted: %v", kept)
	}
	gen := find(res, "Secret", "gen-")
	if raw, _ := base64.StdEncoding.DecodeString(gen["data"].(map[string]any)["API_KEY"].(string)); string(raw) != canary {
		t.Errorf("envs secrets.txt not decrypted as dotenv: %v", gen["data"])
	}
	cfg := find(res, "ConfigMap", "cfg-")
	if v := cfg["data"].(map[string]any)["settings.json"].(string); strings.Contains(v, canary) || !strings.Contains(v, "ENC[") {
		t.Errorf("configMapGenerator input decrypted: %q", v)
	}
}

// TestNoDecryptionLikeFlux: without decryption only an encrypted Secret
// is refused; other kinds (a SopsSecret for sops-secrets-operator) and a
// Secret annotated decrypt: disabled are applied as they are.
func TestNoDecryptionLikeFlux(t *testing.T) {
	files, _ := fluxObjects(t)
	_, err := Build(context.Background(), files, Options{Path: "app"})
	if !errors.Is(err, ErrEncryptedNotDecrypted) || !strings.Contains(err.Error(), "Secret//db") {
		t.Fatalf("encrypted Secret without decryption: %v", err)
	}
	files["app/kustomization.yaml"] = []byte("resources:\n  - kept.yaml\n  - sopssecret.yaml\n")
	res, err := Build(context.Background(), files, Options{Path: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if op := find(res, "SopsSecret", "op"); op == nil || op["sops"] == nil {
		t.Errorf("SopsSecret: %v", op)
	}
	if kept := find(res, "Secret", "kept"); kept == nil || kept["sops"] == nil {
		t.Errorf("kept: %v", kept)
	}
	// --require-encrypted-secrets: an encrypted Secret applied as it is
	// holds only ciphertext, so it passes the built-Secret check.
	if _, err := Build(context.Background(), files, Options{Path: "app", RequireEncryptedSecrets: true}); err != nil {
		t.Fatalf("require-encrypted-secrets: %v", err)
	}
}

func toJSON(t *testing.T, m map[string]any) string {
	t.Helper()
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				b.WriteString(k + ":")
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		default:
			b.WriteString(strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " ")) + ";")
		}
	}
	walk(m)
	return b.String()
}

func fmtAny(v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
		return string(raw)
	}
	return s
}
