package cluster

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/clitest"
)

// In the scripts, lacre runs the full command tree in-process, as
// lacre-cluster does.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"lacre": func() { os.Exit(cliapp.Main(os.Args[1:], full...)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: clitest.Home,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"code": clitest.Code,
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
			env.Setenv("LACRE_CLUSTER_BIN", env.WorkDir+"/no-companion")
			return clitest.Home(env)
		},
		// sops interoperability is checked by package cli's run.
		Condition: func(cond string) (bool, error) { return false, nil },
		Cmds:      map[string]func(ts *testscript.TestScript, neg bool, args []string){"cloudkms": clitest.CloudKMS},
	})
}
