package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/cli/clitest"
)

// TestCheckSecretsBypasses: check secrets agrees with the controller's
// --require-encrypted-secrets on the forms that got past it (issue 17 item
// 4), and reports a file too large to check instead of skipping it.
func TestCheckSecretsBypasses(t *testing.T) {
	const secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  k: CANARY-check-4\n"
	for _, tc := range []struct{ name, data, want string }{
		{"secret.txt", secret, "Kubernetes Secret is not SOPS-encrypted"},
		{"list.yaml", "apiVersion: v1\nkind: List\nitems:\n  - " + strings.ReplaceAll(strings.TrimSuffix(secret, "\n"), "\n", "\n    ") + "\n", "Kubernetes Secret is not SOPS-encrypted"},
		{"comments.yaml", "# sops:\n#     mac: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n" + secret, "Kubernetes Secret is not SOPS-encrypted"},
		{"clear.yaml", "apiVersion: v1\nkind: Secret\ndata:\n    a: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\nstringData:\n    k: CANARY-check-4\nsops:\n    mac: ENC[AES256_GCM,data:y,iv:y,tag:z,type:str]\n    encrypted_regex: ^data$\n", "Kubernetes Secret is not SOPS-encrypted"},
		{"big.yaml", "k: " + strings.Repeat("a", checkMaxFileSize), "larger than 16 MiB: not checked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ".sops.yaml"), []byte("creation_rules:\n  - age: age16p26fqlqz6535fc9wd96cdnqh0w44f7znk8w435hw0262yghgqrskn7jv5\n"), 0o644)
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, []byte(tc.data), 0o644)
			code, stdout, stderr := clitest.Run(clitest.Env(nil, nil), lacre, "check", "secrets", p)
			if code == 0 || !strings.Contains(stdout, p+": "+tc.want) || strings.Contains(stdout+stderr, "CANARY") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
		})
	}
}
