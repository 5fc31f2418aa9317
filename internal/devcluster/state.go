package devcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lacre/lacre/internal/testcluster"
)

// State is what dev.json records about the running process.
type State struct {
	Pid int `json:"pid"`
	// PidStart is the process's start time (/proc/PID/stat, clock ticks
	// since boot; 0 where there is no /proc): a pid reused by another
	// process after a crash is not mistaken for this one.
	PidStart   uint64    `json:"pidStart,omitempty"`
	Servers    []int     `json:"servers"` // etcd and kube-apiserver
	Host       string    `json:"host"`
	Kubeconfig string    `json:"kubeconfig"`
	Started    time.Time `json:"started"`
}

// NewState is the state of this process, with its servers' pids.
func NewState(servers []int, host, kubeconfig string) State {
	start, _ := procStart(os.Getpid())
	return State{Pid: os.Getpid(), PidStart: start, Servers: servers, Host: host, Kubeconfig: kubeconfig, Started: time.Now().UTC()}
}

// Running reports whether the recorded process is alive (and is the one
// recorded, where /proc tells).
func (s *State) Running() bool {
	if s == nil || !testcluster.Alive(s.Pid) {
		return false
	}
	start, ok := procStart(s.Pid)
	return !ok || s.PidStart == 0 || start == s.PidStart
}

// procStart returns field 22 of /proc/PID/stat, the start time.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // comm may hold spaces
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // state is field 3, so start time is f[19]
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

const maxStateSize = 64 << 10

// ReadState reads dir's state file (fs.ErrNotExist when there is none).
func ReadState(dir string) (*State, error) {
	f, err := os.Open(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", StateFile, maxStateSize)
	}
	st := &State{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %v", StateFile, err)
	}
	return st, nil
}

// WriteState writes dir's state file atomically (0600).
func WriteState(dir string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return testcluster.WriteFileAtomic(filepath.Join(dir, StateFile), append(b, '\n'))
}

// RemoveState removes dir's state file if it still names pid.
func RemoveState(dir string, pid int) {
	if st, err := ReadState(dir); err == nil && st.Pid == pid {
		os.Remove(filepath.Join(dir, StateFile))
	}
}

// UpOptions describe the background process Up starts.
type UpOptions struct {
	Dir string
	// Exe and Args are the command line that runs Serve (Args[0] is the
	// program name the process sees). Up hands it a pipe as file
	// descriptor 3 (ReadyFD); it writes a line there once it is up.
	Exe  string
	Args []string
	Env  []string
	// Timeout bounds the wait for that line (default 2 minutes).
	Timeout time.Duration
}

// ReadyFD is the descriptor of the pipe a background process reports
// readiness on.
const ReadyFD = 3

// Up starts the background process in its own session, its output
// appended to dir/dev.log, and waits until it reports that it is up. A
// process already running in dir is left alone: its state is returned
// with already set.
func Up(ctx context.Context, o UpOptions) (st *State, already bool, err error) {
	if st, err := ReadState(o.Dir); err == nil && st.Running() {
		return st, true, nil
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, false, err
	}
	logPath := filepath.Join(o.Dir, LogFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, false, err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	cmd := &exec.Cmd{Path: o.Exe, Args: o.Args, Env: o.Env, Dir: o.Dir, Stdout: logf, Stderr: logf,
		ExtraFiles: []*os.File{w}, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, false, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
	}()
	fail := func(why string) (*State, bool, error) {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-exited
		return nil, false, fmt.Errorf("%s; the last lines of %s:\n%s", why, logPath, tail(logPath))
	}
	select {
	case ok := <-ready:
		if !ok {
			return fail("the background process exited before it was up")
		}
	case <-time.After(o.Timeout):
		return fail(fmt.Sprintf("not up after %s", o.Timeout))
	case <-ctx.Done():
		return fail("interrupted")
	}
	st, err = ReadState(o.Dir)
	return st, false, err
}

// tail returns the end of a log file.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 4096 {
		_, _ = f.Seek(-4096, io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return string(b)
}

// Down stops the process running in dir (SIGTERM; SIGKILL after timeout)
// and waits until it and its servers have exited. ErrNotRunning when
// nothing runs there (a stale state file is removed).
func Down(ctx context.Context, dir string, timeout time.Duration) (*State, error) {
	st, err := ReadState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotRunning
	}
	if err != nil {
		return nil, err
	}
	if !st.Running() {
		// Its servers died with it (a parent-death signal); the pids
		// may belong to other processes by now: nothing is killed.
		os.Remove(filepath.Join(dir, StateFile))
		return st, ErrNotRunning
	}
	pids := append([]int{st.Pid}, st.Servers...)
	_ = syscall.Kill(st.Pid, syscall.SIGTERM)
	if err := waitGone(ctx, pids, timeout); err != nil {
		// Killed, its servers get their parent-death signal.
		_ = syscall.Kill(st.Pid, syscall.SIGKILL)
		if err := waitGone(ctx, pids, 10*time.Second); err != nil {
			return st, err
		}
		RemoveState(dir, st.Pid)
	}
	return st, nil
}

// waitGone polls until none of pids is alive.
func waitGone(ctx context.Context, pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, p := range pids {
			if testcluster.Alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still running after %s", left, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
