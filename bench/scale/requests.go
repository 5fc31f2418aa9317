package main

import (
	"net/http"
	"strings"
	"sync"
)

// counter counts API requests by class.
type counter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counter) add(k string) {
	c.mu.Lock()
	c.m[k]++
	c.mu.Unlock()
}

func (c *counter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

func diff(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range b {
		if d := v - a[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

type countingRT struct {
	rt http.RoundTripper
	c  *counter
}

// class names a request: the verb, and for writes what kind of write.
func class(r *http.Request) string {
	p, q := r.URL.Path, r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		if q.Get("watch") == "true" || q.Get("watch") == "1" {
			return "watch"
		}
		// /api/v1/namespaces/x/secrets/name is a get, .../secrets a list.
		parts := strings.Split(strings.Trim(p, "/"), "/")
		if (parts[0] == "api" && len(parts)%2 == 1) || (parts[0] == "apis" && len(parts)%2 == 0) {
			return "list"
		}
		return "get"
	}
	verb := strings.ToLower(r.Method)
	switch {
	case q.Get("dryRun") != "":
		return verb + " (dry-run)"
	case strings.Contains(p, "/kustomizations/") && strings.HasSuffix(p, "/status"):
		return verb + " write: Kustomization status"
	case strings.Contains(p, "/gitrepositories/") && strings.HasSuffix(p, "/status"):
		return verb + " write: GitRepository status"
	case strings.Contains(p, "/events"):
		return verb + " write: Event"
	case strings.Contains(p, "/leases"):
		return verb + " write: Lease"
	}
	return verb + " write: object"
}

func (t countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.add(class(r))
	return t.rt.RoundTrip(r)
}
