package build

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sopsfile"
)

const plainSecret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oops\nstringData:\n  k: " + canary + "\n"

// TestRequireEncryptedSecretsBypasses: every way a Secret built from
// values in clear in Git got past --require-encrypted-secrets (issue 17
// item 4) is refused, without the value in the message.
func TestRequireEncryptedSecretsBypasses(t *testing.T) {
	id, r := testKey(t)
	for _, tc := range []struct {
		name    string
		decrypt bool
		files   func() artifact.Files
	}{
		{"other extension", true, func() artifact.Files {
			return artifact.Files{"app/kustomization.yaml": []byte("resources: [secret.txt]\n"), "app/secret.txt": []byte(plainSecret)}
		}},
		{"kind List", true, func() artifact.Files {
			list := "apiVersion: v1\nkind: List\nitems:\n  - " + strings.ReplaceAll(strings.TrimSuffix(plainSecret, "\n"), "\n", "\n    ") + "\n"
			return artifact.Files{"app/kustomization.yaml": []byte("resources: [list.yaml]\n"), "app/list.yaml": []byte(list)}
		}},
		{"sops-looking comments", false, func() artifact.Files {
			return artifact.Files{
				"app/kustomization.yaml": []byte("resources: [secret.yaml]\n"),
				"app/secret.yaml":        []byte("# sops:\n#     mac: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n" + plainSecret),
			}
		}},
		{"json6902 patch ConfigMap to Secret", true, func() artifact.Files {
			return artifact.Files{
				"app/kustomization.yaml": []byte("resources: [cm.yaml]\npatches:\n  - target: {kind: ConfigMap, name: cm}\n    patch: |-\n      - op: replace\n        path: /kind\n        value: Secret\n"),
				"app/cm.yaml":            []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\nstringData:\n  k: " + canary + "\n"),
			}
		}},
		{"stringData in clear", true, func() artifact.Files {
			s := "apiVersion: v1\nkind: Secret\nmetadata:\n    name: s\ndata:\n    a: " + b64("x") + "\nstringData:\n    k: " + canary + "\n"
			return artifact.Files{"app/kustomization.yaml": []byte("resources: [secret.yaml]\n"), "app/secret.yaml": encrypt(t, r, "secret.yaml", s, sopsfile.Rules{EncryptedRegex: "^data$"})}
		}},
		{"generator literal", true, func() artifact.Files {
			return artifact.Files{"app/kustomization.yaml": []byte("secretGenerator:\n  - name: g\n    literals: [k=" + canary + "]\n")}
		}},
		{"generator plain env", true, func() artifact.Files {
			return artifact.Files{"app/kustomization.yaml": []byte("secretGenerator:\n  - name: g\n    envs: [app.env]\n"), "app/app.env": []byte("K=" + canary + "\n")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildWithin(t, tc.files(), Options{Path: "app", Decrypt: tc.decrypt, Identities: []keys.Identity{id}, RequireEncryptedSecrets: true})
			if !errors.Is(err, ErrPlaintextSecret) || strings.Contains(err.Error(), canary) {
				t.Fatalf("got %v", err)
			}
			t.Log(err)
		})
	}
}

// TestRequireEncryptedSecretsDecrypted: Secrets whose values all came out
// of decryption pass: an encrypted manifest, generators over encrypted
// dotenv, JSON and binary files.
func TestRequireEncryptedSecretsDecrypted(t *testing.T) {
	id, r := testKey(t)
	files := artifact.Files{
		"app/kustomization.yaml": []byte("resources: [secret.yaml]\nsecretGenerator:\n  - name: g\n    envs: [app.env]\n    files: [token.json, blob.bin]\n"),
		"app/secret.yaml":        encrypt(t, r, "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n    name: s\ndata:\n    a: "+b64(canary)+"\nstringData:\n    b: "+canary+"\n", sopsfile.Rules{}),
		"app/app.env":            encrypt(t, r, "app.env", "A="+canary+"\nB=two words\n", sopsfile.Rules{}),
		"app/token.json":         encrypt(t, r, "token.json", `{"token": "`+canary+`"}`, sopsfile.Rules{}),
		"app/blob.bin":           encrypt(t, r, "blob.bin", "raw "+canary, sopsfile.Rules{}),
	}
	res, err := Build(context.Background(), files, Options{Path: "app", Decrypt: true, Identities: []keys.Identity{id}, RequireEncryptedSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 2 {
		t.Fatalf("%d objects", len(res.Objects))
	}
}
