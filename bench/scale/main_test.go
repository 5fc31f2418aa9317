package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestScaleSmall runs the benchmark with N=5 in-process when
// LACRE_BENCH_SCALE=1 (it needs the local control plane and git). It
// checks that the run completes and prints its table; it asserts no timing.
func TestScaleSmall(t *testing.T) {
	if os.Getenv("LACRE_BENCH_SCALE") != "1" {
		t.Skip("set LACRE_BENCH_SCALE=1 to run the scale benchmark with N=5")
	}
	var out bytes.Buffer
	cfg := config{ns: []int{5}, concurrent: 4, timeout: 2 * time.Minute, child: true, out: &out}
	if err := run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	for _, want := range []string{"N = 5 Kustomizations", "all 5 Ready", "resync: key unwraps | 0 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestClass(t *testing.T) {
	for _, c := range []struct{ method, url, want string }{
		{"GET", "/api/v1/namespaces/apps/secrets/s", "get"},
		{"GET", "/api/v1/namespaces/apps/secrets", "list"},
		{"GET", "/apis/apps/v1/namespaces/apps/deployments/d", "get"},
		{"GET", "/apis/apps/v1/namespaces/apps/deployments", "list"},
		{"GET", "/apis/apps/v1/deployments?watch=true", "watch"},
		{"PATCH", "/apis/apps/v1/namespaces/apps/deployments/d?dryRun=All&fieldManager=x", "patch (dry-run)"},
		{"PATCH", "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/f/kustomizations/k/status", "patch write: Kustomization status"},
		{"POST", "/api/v1/namespaces/f/events", "post write: Event"},
		{"PUT", "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/f/kustomizations/k", "put write: object"},
	} {
		r, err := newRequest(c.method, c.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := class(r); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.url, got, c.want)
		}
	}
}

func newRequest(method, url string) (*http.Request, error) {
	return http.NewRequest(method, "https://127.0.0.1"+url, nil)
}
