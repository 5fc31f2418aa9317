package testsupport

import (
	"net/http"
	"strings"
	"sync"
)

// RequestCounter counts the API requests a client makes, by Class. Wrap
// it around a rest.Config's transport:
//
//	cfg.WrapTransport = counter.Wrap
type RequestCounter struct {
	mu sync.Mutex
	m  map[string]int64
	// log, when set, keeps "METHOD path?query" of every request counted.
	log []string
	// Keep records each request's method and URL (see Log).
	Keep bool
}

// Wrap returns rt counting every request through it.
func (c *RequestCounter) Wrap(rt http.RoundTripper) http.RoundTripper {
	return countingRT{rt, c}
}

func (c *RequestCounter) add(r *http.Request) {
	k := Class(r)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[k]++
	if c.Keep {
		c.log = append(c.log, r.Method+" "+r.URL.RequestURI())
	}
	c.mu.Unlock()
}

// Snapshot returns the counts so far, by class.
func (c *RequestCounter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// Log returns the requests recorded since Keep was set (oldest first).
func (c *RequestCounter) Log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// DiffCounts returns b - a, without the zero entries.
func DiffCounts(a, b map[string]int64) map[string]int64 {
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
	c  *RequestCounter
}

func (t countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.add(r)
	return t.rt.RoundTrip(r)
}

// Request classes besides "get", "list" and "watch" (see Class).
const (
	ClassKustomizationStatus = "write: Kustomization status"
	ClassGitRepositoryStatus = "write: GitRepository status"
	ClassEvent               = "write: Event"
	ClassLease               = "write: Lease"
	ClassObject              = "write: object"
	ClassDryRun              = "dry-run"
)

// Class names a request: "get", "list" or "watch" for reads; for
// writes the verb and what kind of write ("patch write: object",
// "patch dry-run", …).
func Class(r *http.Request) string {
	p, q := r.URL.Path, r.URL.Query()
	if r.Method == http.MethodGet {
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
		return verb + " " + ClassDryRun
	case strings.Contains(p, "/kustomizations/") && strings.HasSuffix(p, "/status"):
		return verb + " " + ClassKustomizationStatus
	case strings.Contains(p, "/gitrepositories/") && strings.HasSuffix(p, "/status"):
		return verb + " " + ClassGitRepositoryStatus
	case strings.Contains(p, "/events"):
		return verb + " " + ClassEvent
	case strings.Contains(p, "/leases"):
		return verb + " " + ClassLease
	}
	return verb + " " + ClassObject
}
