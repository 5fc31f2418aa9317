package sopsfile

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sops/formats"
)

func sopsBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("sops"); err == nil {
		return p
	}
	out, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "sops")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the sops CLI is required in CI")
	}
	t.Skip("the sops CLI is not installed")
	return ""
}

type ageKey struct {
	file, recipient string
	id              keys.Identity
	r               keys.Recipient
}

func newAgeKey(t testing.TB) ageKey {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "key.txt")
	os.WriteFile(f, []byte(id.String()+"\n"), 0o600)
	ours, _ := agekeys.ParseIdentity(id.String())
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	return ageKey{f, id.Recipient().String(), ours, r}
}

func runSops(t *testing.T, k ageKey, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(sopsBin(t), args...)
	cmd.Env = append(os.Environ(), "SOPS_AGE_KEY_FILE="+k.file, "SOPS_DISABLE_VERSION_CHECK=1")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("sops %v: %v: %s", args, err, stderr.String())
	}
	return out, nil
}

var interopCases = []struct {
	file  string
	rules Rules
	flags []string
}{
	{"basic.yaml", Rules{}, nil},
	{"basic.yaml", Rules{EncryptedRegex: "^(data|stringData)$"}, []string{"--encrypted-regex", "^(data|stringData)$"}},
	{"basic.yaml", Rules{EncryptedRegex: "^data$", MACOnlyEncrypted: true}, []string{"--encrypted-regex", "^data$", "--mac-only-encrypted"}},
	{"basic.yaml", Rules{UnencryptedSuffix: "_plain"}, []string{"--unencrypted-suffix", "_plain"}},
	{"basic.yaml", Rules{EncryptedCommentRegex: "comment in data"}, []string{"--encrypted-comment-regex", "comment in data"}},
	{"basic.json", Rules{}, nil},
	{"basic.json", Rules{UnencryptedRegex: "^plain$"}, []string{"--unencrypted-regex", "^plain$"}},
	{"basic.env", Rules{}, nil},
	{"basic.ini", Rules{}, nil},
	{"basic.bin", Rules{}, nil},
}

// TestInteropWithSops encrypts every sample with sops and decrypts it with
// lacre, and the other way round, comparing with sops's own decryption.
func TestInteropWithSops(t *testing.T) {
	ctx := context.Background()
	for _, tc := range interopCases {
		name := tc.file + "/" + strings.Join(tc.flags, " ")
		t.Run(name, func(t *testing.T) {
			k := newAgeKey(t)
			plain, err := os.ReadFile(filepath.Join("testdata/interop", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			f := formats.FormatForPath(tc.file)
			typ := f.String()
			common := []string{"--input-type", typ, "--output-type", typ}
			// Global flags must precede the subcommand in sops.
			var global, local []string
			for i := 0; i < len(tc.flags); i++ {
				switch tc.flags[i] {
				case "--mac-only-encrypted":
					global = append(global, tc.flags[i])
				case "--encrypted-comment-regex", "--unencrypted-comment-regex":
					global = append(global, tc.flags[i], tc.flags[i+1])
					i++
				default:
					local = append(local, tc.flags[i])
				}
			}
			args := append(append(append(global, "encrypt", "--age", k.recipient), common...), local...)
			sopsEnc, err := runSops(t, k, plain, append(args, "/dev/stdin")...)
			if err != nil {
				t.Fatal(err)
			}
			sopsDec, err := runSops(t, k, sopsEnc, append([]string{"decrypt"}, append(common, "/dev/stdin")...)...)
			if err != nil {
				t.Fatal(err)
			}
			opts := DecryptOptions{InputFormat: f, OutputFormat: f, Identities: []keys.Identity{k.id}}
			ours, err := Decrypt(ctx, sopsEnc, opts)
			if err != nil {
				t.Fatalf("lacre cannot decrypt sops's file: %v\n%s", err, sopsEnc)
			}
			if !equivalent(f, ours, sopsDec) {
				t.Fatalf("lacre decrypted sops's file differently:\n--- lacre\n%s\n--- sops\n%s", ours, sopsDec)
			}

			lacreEnc, err := Encrypt(ctx, plain, EncryptOptions{InputFormat: f, OutputFormat: f, Groups: [][]keys.Recipient{{k.r}}, Rules: tc.rules})
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := runSops(t, k, lacreEnc, append([]string{"decrypt"}, append(common, "/dev/stdin")...)...)
			if err != nil {
				t.Fatalf("sops cannot decrypt lacre's file: %v\n%s", err, lacreEnc)
			}
			ours2, err := Decrypt(ctx, lacreEnc, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !equivalent(f, ours2, theirs) {
				t.Fatalf("sops decrypted lacre's file differently:\n--- lacre\n%s\n--- sops\n%s", ours2, theirs)
			}
		})
	}
}

// equivalent compares decrypted outputs. lacre keeps a YAML line comment on
// its line where sops moves it above its key; otherwise they are identical.
func equivalent(f formats.Format, ours, theirs []byte) bool {
	if bytes.Equal(ours, theirs) {
		return true
	}
	if f != formats.YAML {
		return false
	}
	norm := func(b []byte) string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if i := strings.Index(l, " #"); i > 0 && strings.TrimSpace(l[:i]) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
				out = append(out, indent+strings.TrimSpace(l[i+1:]), l[:i])
				continue
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	return norm(ours) == norm(theirs)
}
