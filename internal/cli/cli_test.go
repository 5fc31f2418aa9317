package cli

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/clitest"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

// testCommands are the commands of the scripts. lacre is the lean CLI;
// companion_ext_test.go adds lacre-cluster, which the scripts' lacre finds
// next to it, as an installed one would.
var testCommands = map[string]func(){}

// lacre is the lean CLI's command tree, as cmd/lacre composes it.
var lacre = []cliapp.Extension{Commands, cliapp.CompanionStubs}

func TestMain(m *testing.M) {
	testCommands["lacre"] = func() { os.Exit(cliapp.Main(os.Args[1:], lacre...)) }
	testscript.Main(m, testCommands)
}

func TestScripts(t *testing.T) {
	requireSops := os.Getenv("CI") == "true"
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			if p := sopsPath(); p != "" {
				env.Setenv("PATH", filepath.Dir(p)+string(os.PathListSeparator)+env.Getenv("PATH"))
			}
			return clitest.Home(env)
		},
		Condition: func(cond string) (bool, error) {
			if cond == "gpg" {
				_, err := exec.LookPath("gpg")
				if err != nil && requireSops {
					t.Fatal("gpg is required in CI")
				}
				return err == nil, nil
			}
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			if cond == "sops" {
				if sopsPath() == "" {
					if requireSops {
						t.Fatal("the sops CLI is required in CI (go install github.com/getsops/sops/v3/cmd/sops@v3.13.3)")
					}
					return false, nil
				}
				return true, nil
			}
			return false, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"code": clitest.Code,
			// waitsock PATH waits until a server's unix socket exists.
			"waitsock": clitest.WaitSocket,
			// vaultserver VAR starts a local Vault transit server (token
			// root-token) and sets VAR to its address.
			"vaultserver": func(ts *testscript.TestScript, neg bool, args []string) {
				srv := vaulttest.New("root-token")
				ts.Defer(srv.Close)
				ts.Setenv(args[0], srv.URL)
			},
			// cloudkms starts local AWS KMS, GCP KMS and Azure Key Vault
			// servers (see clitest.CloudKMS).
			"cloudkms": clitest.CloudKMS,
			// envfile VAR FILE sets VAR to the trimmed content of FILE.
			"envfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: envfile VAR FILE")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
			},
			// pubkey FILE VAR sets VAR to the "# public key:" of an age key file.
			"pubkey": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: pubkey FILE VAR")
				}
				f, err := os.Open(ts.MkAbs(args[0]))
				ts.Check(err)
				defer f.Close()
				s := bufio.NewScanner(f)
				for s.Scan() {
					if k, ok := strings.CutPrefix(s.Text(), "# public key: "); ok {
						ts.Setenv(args[1], k)
						return
					}
				}
				ts.Fatalf("no public key in %s", args[0])
			},
		},
	})
}

func sopsPath() string {
	if p, err := exec.LookPath("sops"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "sops")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}
