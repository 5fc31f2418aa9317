// Package gittest runs a real Git server for tests: git's own smart HTTP
// (git http-backend behind net/http/cgi) on loopback, optionally with basic
// auth, over bare repositories it creates with the git CLI.
package gittest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server serves bare repositories under Root.
type Server struct {
	Root     string
	URL      string // base URL; a repository is URL + "/" + name + ".git"
	Username string
	Password string
	srv      *httptest.Server
	handler  http.Handler
	t        testing.TB
}

// Git runs git with a fixed identity and returns its output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=lacre test", "GIT_AUTHOR_EMAIL=test@lacre.invalid",
		"GIT_COMMITTER_NAME=lacre test", "GIT_COMMITTER_EMAIL=test@lacre.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// New starts a server. With username set, every request needs basic auth.
func New(t testing.TB, username, password string) *Server {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	execPath := Git(t, t.TempDir(), "--exec-path")
	s := &Server{Root: t.TempDir(), Username: username, Password: password, t: t}
	h := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + s.Root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Username != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != s.Username || p != s.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
	s.srv = httptest.NewServer(s.handler)
	t.Cleanup(func() { s.srv.Close() })
	s.URL = s.srv.URL
	return s
}

// Close stops the server (to simulate an outage); Restart brings it back.
func (s *Server) Close() { s.srv.Close() }

// Restart serves the same repositories again at the same address after
// Close, so clone URLs stay valid across a simulated outage.
func (s *Server) Restart() {
	s.t.Helper()
	l, err := ListenAgain(s.srv.Listener.Addr().String())
	if err != nil {
		s.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.handler)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	s.srv = srv
}

// ListenAgain listens on addr, retrying for a few seconds while the
// previous listener's port is released.
func ListenAgain(addr string) (net.Listener, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Repo is a bare repository on the server with a working clone for commits.
type Repo struct {
	s    *Server
	Name string
	Bare string
	Work string
}

// URL returns the repository's clone URL.
func (r *Repo) URL() string { return r.s.URL + "/" + r.Name + ".git" }

// NewRepo creates an empty bare repository and a working clone on branch.
func (s *Server) NewRepo(name, branch string) *Repo {
	s.t.Helper()
	r := &Repo{s: s, Name: name, Bare: filepath.Join(s.Root, name+".git"), Work: filepath.Join(s.t.TempDir(), name)}
	Git(s.t, s.Root, "init", "--bare", "-q", "-b", branch, r.Bare)
	Git(s.t, r.Bare, "config", "http.receivepack", "true")
	Git(s.t, filepath.Dir(r.Work), "init", "-q", "-b", branch, r.Work)
	Git(s.t, r.Work, "remote", "add", "origin", r.Bare)
	return r
}

// Commit writes files (path → content; empty content deletes), commits and
// pushes the current branch. It returns the commit hash.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.s.t.Helper()
	for p, c := range files {
		full := filepath.Join(r.Work, filepath.FromSlash(p))
		if c == "" {
			os.Remove(full)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.s.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			r.s.t.Fatal(err)
		}
	}
	Git(r.s.t, r.Work, "add", "-A")
	Git(r.s.t, r.Work, "commit", "-q", "--allow-empty", "-m", msg)
	Git(r.s.t, r.Work, "push", "-q", "-f", "origin", "HEAD")
	return Git(r.s.t, r.Work, "rev-parse", "HEAD")
}

// Run runs git in the working clone.
func (r *Repo) Run(args ...string) string { r.s.t.Helper(); return Git(r.s.t, r.Work, args...) }

// Tag creates an annotated tag at HEAD and pushes it.
func (r *Repo) Tag(tag string) {
	r.s.t.Helper()
	Git(r.s.t, r.Work, "tag", "-a", "-m", tag, tag)
	Git(r.s.t, r.Work, "push", "-q", "origin", tag)
}

func (r *Repo) String() string { return fmt.Sprintf("repo %s", r.Name) }
