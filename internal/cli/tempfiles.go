package cli

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Temporary files that may hold plaintext: an in-place write's
// ".<name>.lacre-<pid>-<random>" next to its file and edit's
// "lacre-edit-<pid>-<random>" directory. While one exists, SIGINT, SIGTERM
// and SIGHUP remove it before the process exits; one left by a run that
// died (SIGKILL, a crash) is removed by the next run that writes in that
// directory, when it is ours, its process is gone and it is older than
// staleTempAge.

// staleTempAge is how old a dead run's temporary file must be to be
// removed.
const staleTempAge = 10 * time.Minute

var (
	writeTempName = regexp.MustCompile(`^\..+\.lacre-([0-9]+)-[0-9]+$`)
	editTempName  = regexp.MustCompile(`^lacre-edit-([0-9]+)-[0-9]+$`)
)

// tempInfix is the part of a temporary file's name pattern after the
// name it stands for (see os.CreateTemp).
func tempInfix() string { return fmt.Sprintf(".lacre-%d-*", os.Getpid()) }

var temps struct {
	sync.Mutex
	paths map[string]bool
	sig   chan os.Signal
	swept map[string]bool // directories already swept for stale files
}

// trackTemp registers a temporary file or directory to remove on a
// signal; the function it returns unregisters it.
func trackTemp(path string) (untrack func()) {
	temps.Lock()
	defer temps.Unlock()
	if temps.paths == nil {
		temps.paths = map[string]bool{}
	}
	if len(temps.paths) == 0 {
		temps.sig = make(chan os.Signal, 1)
		signal.Notify(temps.sig, catchSignals...)
		go removeTempsOnSignal(temps.sig)
	}
	temps.paths[path] = true
	return func() {
		temps.Lock()
		defer temps.Unlock()
		delete(temps.paths, path)
		if len(temps.paths) == 0 && temps.sig != nil {
			signal.Stop(temps.sig)
			close(temps.sig)
			temps.sig = nil
		}
	}
}

func removeTempsOnSignal(ch chan os.Signal) {
	s, ok := <-ch
	if !ok {
		return
	}
	temps.Lock() // held until exit: no new temporary file
	for p := range temps.paths {
		os.RemoveAll(p)
	}
	os.Exit(signalExitCode(s))
}

// removeStaleTemps removes, once per run and directory, the temporary
// files and directories of runs that died there (see staleTempAge).
func removeStaleTemps(dir string) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	temps.Lock()
	if temps.swept == nil {
		temps.swept = map[string]bool{}
	}
	done := temps.swept[dir]
	temps.swept[dir] = true
	temps.Unlock()
	if done {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := writeTempName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			m = editTempName.FindStringSubmatch(e.Name())
			if m == nil || !e.IsDir() {
				continue
			}
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Lstat(p)
		if err != nil || !ownedByUs(st) || time.Since(st.ModTime()) < staleTempAge {
			continue
		}
		os.RemoveAll(p)
	}
}
