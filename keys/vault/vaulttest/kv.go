package vaulttest

import (
	"encoding/json"
	"maps"
	"net/http"
	"strings"
)

// MountKV serves a KV secrets engine (version 1 or 2) at mount (no
// slashes around it), as Vault documents its read and write endpoints.
func (s *Server) MountKV(mount string, version int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[mount] = version
}

// Secret returns the current data of the secret at path under a KV mount
// and how many versions were written; nil, 0 when there is none.
func (s *Server) Secret(mount, path string) (map[string]any, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.secrets[mount+"/"+path]
	if len(v) == 0 {
		return nil, 0
	}
	return maps.Clone(v[len(v)-1]), len(v)
}

// serveKV answers a request under a KV mount; false when p is not under
// one.
func (s *Server) serveKV(w http.ResponseWriter, r *http.Request, p string) bool {
	s.mu.Lock()
	var mount, rest string
	version := 0
	for m, v := range s.kv {
		if after, ok := strings.CutPrefix(p, m+"/"); ok {
			mount, rest, version = m, after, v
		}
	}
	s.mu.Unlock()
	if version == 0 {
		return false
	}
	if version == 2 {
		var ok bool
		if rest, ok = strings.CutPrefix(rest, "data/"); !ok {
			fail(w, http.StatusNotFound, "unsupported path")
			return true
		}
	}
	key := mount + "/" + rest
	switch r.Method {
	case http.MethodGet:
		s.mu.Lock()
		v := s.secrets[key]
		s.mu.Unlock()
		if len(v) == 0 {
			fail(w, http.StatusNotFound, "")
			return true
		}
		data := any(v[len(v)-1])
		if version == 2 {
			data = map[string]any{"data": v[len(v)-1], "metadata": map[string]any{"version": len(v)}}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": data})
	case http.MethodPost, http.MethodPut:
		var body map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
			fail(w, http.StatusBadRequest, "invalid JSON")
			return true
		}
		if version == 2 {
			d, ok := body["data"].(map[string]any)
			if !ok {
				fail(w, http.StatusBadRequest, "no data provided")
				return true
			}
			body = d
		}
		s.KVWrites.Add(1)
		s.mu.Lock()
		s.secrets[key] = append(s.secrets[key], body)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(w, http.StatusMethodNotAllowed, "unsupported method")
	}
	return true
}
