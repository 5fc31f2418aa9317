package testsupport

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(&b, "%d\n", i)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}

func TestClass(t *testing.T) {
	for _, c := range []struct{ method, url, want string }{
		{"GET", "/api/v1/namespaces/apps/secrets/s", "get"},
		{"GET", "/api/v1/namespaces/apps/secrets", "list"},
		{"GET", "/apis/apps/v1/namespaces/apps/deployments/d", "get"},
		{"GET", "/apis/apps/v1/namespaces/apps/deployments", "list"},
		{"GET", "/apis/apps/v1/deployments?watch=true", "watch"},
		{"PATCH", "/apis/apps/v1/namespaces/apps/deployments/d?dryRun=All&fieldManager=x", "patch dry-run"},
		{"PATCH", "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/f/kustomizations/k/status", "patch write: Kustomization status"},
		{"POST", "/api/v1/namespaces/f/events", "post write: Event"},
		{"PUT", "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/f/kustomizations/k", "put write: object"},
	} {
		r, err := http.NewRequest(c.method, "https://127.0.0.1"+c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := Class(r); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.url, got, c.want)
		}
	}
}
