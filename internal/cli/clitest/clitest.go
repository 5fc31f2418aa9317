package clitest

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// Home gives a script a home of its own: HOME, XDG_CONFIG_HOME and
// GNUPGHOME under its work directory, and no sops version check.
func Home(env *testscript.Env) error {
	env.Setenv("HOME", env.WorkDir+"/home")
	env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/home/.config")
	env.Setenv("GNUPGHOME", env.WorkDir+"/home/.gnupg")
	env.Setenv("SOPS_DISABLE_VERSION_CHECK", "1")
	return os.MkdirAll(env.WorkDir+"/home/.config", 0o700)
}

// Code, the testscript command "code N CMD ARGS...", runs CMD and checks
// that it exits with N; stdout and stderr are kept for the next checks.
func Code(ts *testscript.TestScript, neg bool, args []string) {
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
}

// WaitSocket is the script command "waitsock PATH": it polls until PATH
// exists (a server's unix socket), failing after a minute.
func WaitSocket(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: waitsock PATH")
	}
	p := ts.MkAbs(args[0])
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	ts.Fatalf("%s did not appear", p)
}
