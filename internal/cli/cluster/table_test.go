package cluster

import (
	"io"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// TestClusterCommandsTable checks that the table lacre's stubs are made
// from matches the real cluster commands: names, one-line help, aliases.
func TestClusterCommandsTable(t *testing.T) {
	a := &cliapp.App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	var got []cliapp.ClusterCommand
	for _, c := range commands(a) {
		got = append(got, cliapp.ClusterCommand{Name: c.Name(), Short: c.Short, Aliases: c.Aliases})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
	want := cliapp.ClusterCommands()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cliapp.ClusterCommands() differs from the cluster commands:\ngot (real commands):\n%s\nwant (the table):\n%s", format(got), format(want))
	}
}

func format(cs []cliapp.ClusterCommand) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("  " + c.Name + " " + strings.Join(c.Aliases, ",") + ": " + c.Short + "\n")
	}
	return b.String()
}
