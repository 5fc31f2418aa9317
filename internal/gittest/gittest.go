// Package gittest owns lacre's local Git server: git's own smart HTTP
// (git http-backend behind net/http/cgi) on loopback, optionally with basic
// auth, optionally over SSH, serving bare repositories it creates with the
// git CLI, each with a working clone to commit and push from.
//
// The tests use the testing.TB helpers (New, NewRepo, Commit, ...); the demo
// and the scale benchmark use the error-returning core (Start, CreateRepo,
// Push, ...). The lacre executable does not link this package.
package gittest

import (
	"errors"
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

// ErrNoGit is returned (wrapped) when the git CLI is not installed.
var ErrNoGit = errors.New("git is not installed")

// Server serves bare repositories under Root.
type Server struct {
	Root     string
	URL      string // base URL; a repository is URL + "/" + name + ".git"
	Username string
	Password string
	srv      *httptest.Server
	handler  http.Handler
	t        testing.TB // set by New; nil for Start
}

// RunGit runs git in dir with a fixed identity and no system or user
// configuration, and returns its trimmed output.
func RunGit(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=lacre test", "GIT_AUTHOR_EMAIL=test@lacre.invalid",
		"GIT_COMMITTER_NAME=lacre test", "GIT_COMMITTER_EMAIL=test@lacre.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Git is RunGit that fails the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := RunGit(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Start serves the bare repositories under root (which must exist). With
// username set, every request needs basic auth. Close stops it.
func Start(root, username, password string) (*Server, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoGit, err)
	}
	execPath, err := RunGit(root, "--exec-path")
	if err != nil {
		return nil, err
	}
	s := &Server{Root: root, Username: username, Password: password}
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
	s.URL = s.srv.URL
	return s, nil
}

// New starts a server for a test, in a temporary directory, stopped when
// the test ends; without git the test is skipped.
func New(t testing.TB, username, password string) *Server {
	t.Helper()
	s, err := Start(t.TempDir(), username, password)
	if errors.Is(err, ErrNoGit) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Close stops the server (to simulate an outage); Restart brings it back.
// Restart, NewRepo, Commit, Run and Tag are for servers made by New: they
// fail the test on error.
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

// CreateRepo creates an empty bare repository name on the server and a
// working clone of it on branch at work (which must not exist yet).
func (s *Server) CreateRepo(name, branch, work string) (*Repo, error) {
	r := &Repo{s: s, Name: name, Bare: filepath.Join(s.Root, name+".git"), Work: work}
	if err := os.MkdirAll(filepath.Dir(work), 0o755); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		dir  string
		args []string
	}{
		{s.Root, []string{"init", "--bare", "-q", "-b", branch, r.Bare}},
		{r.Bare, []string{"config", "http.receivepack", "true"}},
		{filepath.Dir(r.Work), []string{"init", "-q", "-b", branch, r.Work}},
		{r.Work, []string{"remote", "add", "origin", r.Bare}},
	} {
		if _, err := RunGit(c.dir, c.args...); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// NewRepo is CreateRepo with a working clone in a test's temporary
// directory; it fails the test on error.
func (s *Server) NewRepo(name, branch string) *Repo {
	s.t.Helper()
	r, err := s.CreateRepo(name, branch, filepath.Join(s.t.TempDir(), name))
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// Push writes files (path → content; empty content deletes) into the
// working clone, commits everything there and pushes the current branch.
// It returns the commit hash.
func (r *Repo) Push(msg string, files map[string]string) (string, error) {
	for p, c := range files {
		full := filepath.Join(r.Work, filepath.FromSlash(p))
		if c == "" {
			os.Remove(full)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			return "", err
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "--allow-empty", "-m", msg}, {"push", "-q", "-f", "origin", "HEAD"}} {
		if _, err := RunGit(r.Work, args...); err != nil {
			return "", err
		}
	}
	return RunGit(r.Work, "rev-parse", "HEAD")
}

// Commit is Push that fails the test on error.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.s.t.Helper()
	h, err := r.Push(msg, files)
	if err != nil {
		r.s.t.Fatal(err)
	}
	return h
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

// AddSubmodule records a submodule at path (a gitlink to commit and its
// .gitmodules entry with url, any string: tests give hostile ones), commits
// and pushes; it returns the new commit. The submodule's directory is left
// empty, as after a clone without --recurse-submodules.
func (r *Repo) AddSubmodule(path, url, commit string) string {
	r.s.t.Helper()
	if err := os.MkdirAll(filepath.Join(r.Work, filepath.FromSlash(path)), 0o755); err != nil {
		r.s.t.Fatal(err)
	}
	r.Run("config", "-f", ".gitmodules", "submodule."+path+".path", path)
	r.Run("config", "-f", ".gitmodules", "submodule."+path+".url", url)
	r.Run("update-index", "--add", "--cacheinfo", "160000,"+commit+","+path)
	r.Run("add", ".gitmodules")
	r.Run("commit", "-q", "--allow-empty", "-m", "submodule "+path)
	r.Run("push", "-q", "-f", "origin", "HEAD")
	return r.Run("rev-parse", "HEAD")
}
