package demo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lacre/lacre/internal/testcluster"
)

// TestDemo runs the README's main job and checks what it prints.
func TestDemo(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	var out bytes.Buffer
	err := Run(context.Background(), Options{Out: &out, BinDir: testcluster.DefaultBinDir()})
	if errors.Is(err, testcluster.ErrNoBinaries) && os.Getenv("CI") != "true" && os.Getenv("LACRE_REQUIRE_CLUSTER") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"password = s3cr3t-from-git", "password = rotated-by-the-demo", "Ready: Applied revision: main@sha1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
