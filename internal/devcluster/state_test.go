package devcluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lacre/lacre/internal/testcluster"
)

// A stand-in for `lacre-cluster dev serve`: records itself, says ready on
// the pipe, then runs until signalled.
const fakeServe = `printf '{"pid": %d}\n' $$ > dev.json && echo ready >&3 && exec sleep 600`

func TestUpStatusDown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	up := func() (*State, bool) {
		t.Helper()
		st, already, err := Up(context.Background(), UpOptions{Dir: dir, Exe: "/bin/sh", Args: []string{"sh", "-c", fakeServe}})
		if err != nil {
			t.Fatal(err)
		}
		return st, already
	}
	st, already := up()
	if already || !st.Running() {
		t.Fatalf("up: %+v, already %v", st, already)
	}
	t.Cleanup(func() { Down(context.Background(), dir, time.Second) })
	if st2, already := up(); !already || st2.Pid != st.Pid {
		t.Errorf("a second up started another process: %+v, already %v", st2, already)
	}
	if fi, err := os.Stat(filepath.Join(dir, LogFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file: %v", err)
	}
	if _, err := Down(context.Background(), dir, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if testcluster.Alive(st.Pid) {
		t.Errorf("process %d still running", st.Pid)
	}
	// The fake leaves its state file behind, as a killed process would:
	// Down then says so and removes it.
	if _, err := Down(context.Background(), dir, time.Second); !errors.Is(err, ErrNotRunning) {
		t.Errorf("down on a stopped directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale state file left: %v", err)
	}
	if _, err := Down(context.Background(), dir, time.Second); !errors.Is(err, ErrNotRunning) {
		t.Errorf("down with no state: %v", err)
	}
}

func TestUpReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	_, _, err := Up(context.Background(), UpOptions{Dir: dir, Exe: "/bin/sh", Args: []string{"sh", "-c", "echo no kube-apiserver here >&2; exit 3"}})
	if err == nil || !strings.Contains(err.Error(), "exited before it was up") || !strings.Contains(err.Error(), "no kube-apiserver here") {
		t.Fatalf("err = %v", err)
	}
}

// A recorded pid now used by another process is not taken for ours.
func TestRunningChecksStartTime(t *testing.T) {
	self := NewState(nil, "", "")
	if !self.Running() {
		t.Fatal("this process is not running?")
	}
	if _, ok := procStart(os.Getpid()); !ok {
		t.Skip("no /proc")
	}
	other := self
	other.PidStart++
	if other.Running() {
		t.Error("a different start time is taken for the same process")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if (&State{Pid: cmd.Process.Pid}).Running() {
		t.Error("an exited process is running")
	}
}

func TestReadStateBounded(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, StateFile), []byte(strings.Repeat(" ", maxStateSize+1)), 0o600)
	if _, err := ReadState(dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}
