package cluster

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lacre/lacre/internal/cli/clitest"
)

// In the scripts, lacre runs the full command tree in-process, as
// lacre-cluster does.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"lacre": func() { os.Exit(Main(os.Args[1:])) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir+"/home")
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/home/.config")
			env.Setenv("GNUPGHOME", env.WorkDir+"/home/.gnupg")
			env.Setenv("SOPS_DISABLE_VERSION_CHECK", "1")
			return os.MkdirAll(env.WorkDir+"/home/.config", 0o700)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// code N CMD ARGS... runs CMD and checks that it exits with N;
			// stdout and stderr are kept for the next checks.
			"code": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 {
					ts.Fatalf("usage: code N command args...")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				err = ts.Exec(args[1], args[2:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("%v", err)
				}
				if got != want {
					ts.Fatalf("exit code %d, want %d", got, want)
				}
			},
		},
	})
}

// TestCloudKeysInProcess runs package cli's cloud key script with the
// full command tree, which builds cloud keys in process: no companion is
// involved (LACRE_CLUSTER_BIN names none).
func TestCloudKeysInProcess(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Files: []string{"../testdata/script/cloudkms.txtar"},
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir+"/home")
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/home/.config")
			env.Setenv("LACRE_CLUSTER_BIN", env.WorkDir+"/no-companion")
			return os.MkdirAll(env.WorkDir+"/home/.config", 0o700)
		},
		// sops interoperability is checked by package cli's run.
		Condition: func(cond string) (bool, error) { return false, nil },
		Cmds:      map[string]func(ts *testscript.TestScript, neg bool, args []string){"cloudkms": clitest.CloudKMS},
	})
}
