package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTempFileIs0600WhileWritten checks that the temporary file of an
// in-place write is 0600 while it holds data, whatever the mode of the
// file it replaces.
func TestTempFileIs0600WhileWritten(t *testing.T) {
	e := newFileEnv(t)
	os.Chmod("enc.yaml", 0o644)
	var modes []os.FileMode
	tempWritten = func(tmp string) {
		st, err := os.Stat(tmp)
		if err != nil {
			t.Error(err)
			return
		}
		modes = append(modes, st.Mode())
	}
	defer func() { tempWritten = nil }()
	e.ok("decrypt", "-i", "enc.yaml")
	if len(modes) != 1 || modes[0].Perm() != 0o600 {
		t.Fatalf("temporary file modes %v, want one 0600", modes)
	}
	if st, _ := os.Stat("enc.yaml"); st.Mode().Perm() != 0o644 {
		t.Fatalf("the file's mode became %v", st.Mode())
	}
}

// deadPid is a process id no process has.
const deadPid = "2147483647"

// TestStaleTempFilesRemoved checks that a run removes the temporary files
// and edit directories that runs killed earlier left, and only those:
// ours, of a process that is gone, and older than staleTempAge.
func TestStaleTempFilesRemoved(t *testing.T) {
	e := newFileEnv(t)
	old := time.Now().Add(-2 * staleTempAge)
	plant := func(p string, dir bool, mtime time.Time) {
		if dir {
			os.Mkdir(p, 0o700)
		} else {
			os.WriteFile(p, []byte("partial plaintext"), 0o600)
		}
		os.Chtimes(p, mtime, mtime)
	}
	stale := ".enc.yaml.lacre-" + deadPid + "-123"
	fresh := ".enc.yaml.lacre-" + deadPid + "-456"
	alive := ".enc.yaml.lacre-" + itoa(os.Getppid()) + "-789"
	plant(stale, false, old)
	plant(fresh, false, time.Now())
	plant(alive, false, old)
	shm := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		shm = "/dev/shm"
	}
	staleEdit := filepath.Join(shm, "lacre-edit-"+deadPid+"-42")
	plant(staleEdit, true, old)
	defer os.RemoveAll(staleEdit)

	temps.swept = nil // a run sweeps a directory once; this process made several runs
	e.ok("set", "enc.yaml", `["other"]`, `"x"`)
	for p, want := range map[string]bool{stale: false, fresh: true, alive: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", p, err == nil, want)
		}
	}
	temps.swept = nil
	code, _, stderr := e.runEnv(map[string]string{"EDITOR": "sed -i s/other/edited/"}, "edit", "enc.yaml")
	if code != 0 {
		t.Fatalf("edit: %d %s", code, stderr)
	}
	if _, err := os.Stat(staleEdit); err == nil {
		t.Errorf("the stale edit directory %s was kept", staleEdit)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestSignalRemovesEditPlaintext runs lacre edit in a process, sends it
// SIGTERM while the editor runs, and checks that the plaintext it gave the
// editor is gone.
func TestSignalRemovesEditPlaintext(t *testing.T) {
	e := newFileEnv(t)
	bin := filepath.Join(t.TempDir(), "lacre")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT} {
		os.Remove("editing")
		cmd := exec.Command(bin, "edit", "enc.yaml")
		cmd.Env = append(os.Environ(), "HOME="+e.dir, "XDG_CONFIG_HOME="+e.dir,
			"SOPS_AGE_KEY_FILE="+filepath.Join(e.dir, "key.txt"),
			`EDITOR=f() { echo "$1" > `+filepath.Join(e.dir, "editing.tmp")+`; mv `+filepath.Join(e.dir, "editing.tmp")+` `+filepath.Join(e.dir, "editing")+`; sleep 5; }; f`)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var plain string
		for i := 0; i < 200 && plain == ""; i++ {
			time.Sleep(25 * time.Millisecond)
			b, _ := os.ReadFile("editing")
			plain = strings.TrimSpace(string(b))
		}
		if plain == "" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the editor did not start")
		}
		if _, err := os.Stat(plain); err != nil {
			t.Fatalf("the plaintext file: %v", err)
		}
		cmd.Process.Signal(sig)
		cmd.Wait()
		if _, err := os.Stat(filepath.Dir(plain)); err == nil {
			os.RemoveAll(filepath.Dir(plain))
			t.Errorf("%v: the plaintext directory %s was left", sig, filepath.Dir(plain))
		}
	}
}
