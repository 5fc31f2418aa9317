package cliapp

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lacre/lacre/sops"
)

// TestVersionCommand: the first line is the one lacre always printed; the
// commit, build date and image digest stamped by the release follow, and
// --output json has all of it.
func TestVersionCommand(t *testing.T) {
	old := [4]string{Version, Commit, Date, ImageDigest}
	t.Cleanup(func() { Version, Commit, Date, ImageDigest = old[0], old[1], old[2], old[3] })
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		a := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		return a.Run(context.Background(), args), out.String()
	}
	Version, Commit, Date, ImageDigest = "0.2.0", "", "", ""
	if code, out := run("version"); code != 0 || out != "lacre 0.2.0 (sops format "+sops.FormatVersion+")\n" {
		t.Errorf("unstamped: %d %q", code, out)
	}
	Commit, Date, ImageDigest = "0123abc", "2026-12-01T05:53:39Z", "sha256:ff"
	code, out := run("version")
	want := "lacre 0.2.0 (sops format " + sops.FormatVersion + ")\ncommit: 0123abc\nbuilt: 2026-12-01T05:53:39Z\nimage: sha256:ff\n"
	if code != 0 || out != want {
		t.Errorf("stamped: %d %q, want %q", code, out, want)
	}
	code, out = run("version", "--output", "json")
	var b BuildInfo
	if err := json.Unmarshal([]byte(out), &b); err != nil || code != 0 {
		t.Fatalf("json: %d %v %q", code, err, out)
	}
	if b.Version != "0.2.0" || b.Commit != "0123abc" || b.Date != Date || b.ImageDigest != "sha256:ff" || b.SopsFormat != sops.FormatVersion || b.GoVersion == "" {
		t.Errorf("json: %+v", b)
	}
	if code, out := run("version", "-o", "yaml"); code == 0 || !strings.Contains(out, `unknown --output "yaml"`) {
		t.Errorf("-o yaml: %d %q", code, out)
	}
}
