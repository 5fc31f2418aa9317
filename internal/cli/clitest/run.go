package clitest

import (
	"bytes"
	"context"
	"strings"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// Env is a Getenv for in-process runs: env's value, else defaults', else "".
func Env(env, defaults map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return defaults[k]
	}
}

// Run runs the CLI in-process with the commands exts add, the environment
// getenv and an empty stdin, and returns its exit code, stdout and stderr.
func Run(getenv func(string) string, exts []cliapp.Extension, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	a := &cliapp.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: getenv}
	code = a.Run(context.Background(), args, exts...)
	return code, out.String(), errb.String()
}
