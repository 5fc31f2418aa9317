package testcluster

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Start returns a cluster for a test, or skips when the binaries are not
// built (fails instead in CI or with LACRE_REQUIRE_CLUSTER=1).
func start(t *testing.T) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), Options{})
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") != "true" && os.Getenv("LACRE_REQUIRE_CLUSTER") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func do(t *testing.T, c *Cluster, method, path, body string) (int, string) {
	t.Helper()
	hc, err := c.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, c.Host()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestClusterLifecycle(t *testing.T) {
	c := start(t)
	if code, body := do(t, c, "GET", "/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, body := do(t, c, "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"demo"}}`); code != 201 {
		t.Fatalf("create namespace: %d %s", code, body)
	}
	if code, body := do(t, c, "POST", "/api/v1/namespaces/demo/secrets", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"k":"v"}}`); code != 201 {
		t.Fatalf("create secret: %d %s", code, body)
	}
	if _, err := os.Stat(c.Kubeconfig()); err != nil {
		t.Fatal(err)
	}

	// The API server restarts on the same port and keeps etcd's data.
	c.StopAPIServer()
	hc, _ := c.HTTPClient()
	hc.Timeout = time.Second
	if _, err := hc.Get(c.Host() + "/readyz"); err == nil {
		t.Fatal("API server still answers after StopAPIServer")
	}
	if err := c.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, c, "GET", "/api/v1/namespaces/demo/secrets/s", ""); code != 200 || !strings.Contains(body, `"k":"dg=="`) {
		t.Fatalf("secret after restart: %d %s", code, body)
	}

	pids, dir := c.Pids(), c.Dir()
	c.Stop()
	c.Stop() // idempotent
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still running after Stop", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data directory %s left behind", dir)
	}
}
