package cluster

import (
	"io"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/cli"
)

// TestClusterCommandsTable checks that the table lacre's stubs are made
// from matches the real cluster commands: names, one-line help, aliases.
func TestClusterCommandsTable(t *testing.T) {
	a := &cli.App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	var got []cli.ClusterCommand
	for _, c := range commands(a) {
		got = append(got, cli.ClusterCommand{Name: c.Name(), Short: c.Short, Aliases: c.Aliases})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
	want := cli.ClusterCommands()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cli.ClusterCommands() differs from the cluster commands:\ngot (real commands):\n%s\nwant (the table):\n%s", format(got), format(want))
	}
}

func format(cs []cli.ClusterCommand) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("  " + c.Name + " " + strings.Join(c.Aliases, ",") + ": " + c.Short + "\n")
	}
	return b.String()
}
