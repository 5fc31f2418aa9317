package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/lacre/lacre/internal/cli/clitest"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// TestRotateAndUpdatekeysOn500Files checks that updatekeys and rotate over
// 500 files lose nothing, and that killing rotate midway leaves every file
// whole (old or new) and decryptable.
func TestRotateAndUpdatekeysOn500Files(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	k1, _ := age.GenerateX25519Identity()
	k2, _ := age.GenerateX25519Identity()
	os.WriteFile("k1.txt", []byte(k1.String()+"\n"), 0o600)
	os.WriteFile("k2.txt", []byte(k2.String()+"\n"), 0o600)
	r1, _ := agekeys.ParseRecipient(k1.Recipient().String())
	plain := map[string]string{}
	os.MkdirAll("secrets", 0o755)
	for i := 0; i < 500; i++ {
		p := filepath.Join("secrets", fmt.Sprintf("s%03d.yaml", i))
		pt := fmt.Sprintf("stringData:\n    password: p-%03d\n    other: o-%03d\n", i, i)
		enc, err := sopsfile.Encrypt(context.Background(), []byte(pt), sopsfile.EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{r1}}})
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, enc, 0o600)
		plain[p] = pt
	}
	os.WriteFile(".sops.yaml", []byte(fmt.Sprintf("creation_rules:\n  - age: %s,%s\n", k1.Recipient(), k2.Recipient())), 0o644)

	run := func(env map[string]string, args ...string) (int, string) {
		code, _, stderr := clitest.Run(clitest.Env(env, nil), lacre, args...)
		return code, stderr
	}
	checkAll := func(keyFile string) {
		t.Helper()
		ids, _ := agekeys.ParseIdentities(bytes.NewReader(must(os.ReadFile(keyFile))))
		for p, want := range plain {
			got, err := sopsfile.Decrypt(context.Background(), must(os.ReadFile(p)), sopsfile.DecryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML, Identities: ids})
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if string(got) != want {
				t.Fatalf("%s changed:\n%s", p, got)
			}
		}
	}
	with1 := map[string]string{"SOPS_AGE_KEY_FILE": filepath.Join(dir, "k1.txt")}
	if code, stderr := run(with1, "updatekeys", "-y", "-r", "secrets"); code != 0 {
		t.Fatalf("updatekeys: %d %s", code, stderr)
	}
	checkAll("k2.txt") // the added key now opens every file
	if code, stderr := run(with1, "updatekeys", "--check", "-r", "secrets"); code != 0 {
		t.Fatalf("updatekeys --check after update: %d %s", code, stderr)
	}
	if code, stderr := run(with1, "rotate", "-i", "-r", "secrets"); code != 0 {
		t.Fatalf("rotate: %d %s", code, stderr)
	}
	checkAll("k1.txt")
	checkAll("k2.txt")

	// Kill a rotate run midway (a separate process: this test binary
	// doubles as lacre, see TestMain).
	bin := filepath.Join(t.TempDir(), "lacre")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	for _, delay := range []time.Duration{50 * time.Millisecond, 150 * time.Millisecond} {
		cmd := exec.Command(bin, "rotate", "-i", "-r", "secrets")
		cmd.Env = append(os.Environ(), "SOPS_AGE_KEY_FILE="+filepath.Join(dir, "k1.txt"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		checkAll("k1.txt")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
