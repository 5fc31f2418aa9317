package cliapp

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestCompanionCommand(t *testing.T) {
	a := &App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	// Stand-ins for package cli's file commands, which run in lacre.
	fileCommands := func(a *App, root *cobra.Command) {
		check := &cobra.Command{Use: "check", Aliases: []string{"lint"}}
		check.AddCommand(&cobra.Command{Use: "secrets", RunE: func(*cobra.Command, []string) error { return nil }})
		root.AddCommand(check, &cobra.Command{Use: "decrypt", RunE: func(*cobra.Command, []string) error { return nil }})
	}
	root := a.rootCommand([]Extension{fileCommands, CompanionStubs})
	for _, tc := range []struct {
		args []string
		want string // the stub dispatched to, "" for none
	}{
		{[]string{"create", "source", "git", "x", "--url", "u"}, "create"},
		{[]string{"--config", "c.yaml", "get", "kustomizations"}, "get"},
		{[]string{"lint", "secrets"}, ""}, // check runs in lacre itself
		{[]string{"diff", "kustomization", "x"}, "diff"},
		{[]string{"help", "install"}, "install"},
		{[]string{"__complete", "reconcile", "kustomization", ""}, "reconcile"},
		{[]string{"__completeNoDesc", "tree", ""}, "tree"},
		{[]string{"decrypt", "x.yaml"}, ""},
		{[]string{"help", "decrypt"}, ""},
		{[]string{"__complete", "cre"}, ""},
		{[]string{"__complete", ""}, ""},
		{[]string{"--help"}, ""},
		{nil, ""},
	} {
		got := ""
		if c := companionCommand(root, tc.args); c != nil {
			got = c.Name()
		}
		if got != tc.want {
			t.Errorf("%q: dispatched to %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestCompanionNotFound(t *testing.T) {
	var errb strings.Builder
	dir := t.TempDir()
	a := &App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errb, Getenv: func(k string) string {
		if k == "PATH" {
			return dir
		}
		return ""
	}}
	if code := a.Run(context.Background(), []string{"get", "kustomizations"}, CompanionStubs); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{`lacre: error: "get" is part of lacre-cluster, which was not found next to `, " or in PATH (install: go install github.com/lacre/lacre/cmd/lacre-cluster@latest)\n"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}
