package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be a controller process too (the
// benchmark starts its own executable with -controller).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-controller" {
		os.Exit(mainArgs(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestScaleSmall runs the benchmark with N=6 over two controller
// processes when LACRE_BENCH_SCALE=1 (it needs the local control plane
// and git). It checks that the run completes and prints its table; it
// asserts no timing.
func TestScaleSmall(t *testing.T) {
	if os.Getenv("LACRE_BENCH_SCALE") != "1" {
		t.Skip("set LACRE_BENCH_SCALE=1 to run the scale benchmark with N=6")
	}
	var out bytes.Buffer
	cfg := config{ns: []int{6}, shards: []int{2}, concurrent: 4, timeout: 2 * time.Minute, child: true, out: &out}
	if err := run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	for _, want := range []string{"N = 6 Kustomizations, 2 controller process(es)", "all 6 Ready", "Ready ÷ floor", "resync: key unwraps | 0 |", "resync: API writes other than Kustomization status | 0 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
