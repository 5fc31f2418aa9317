package cli

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/lacre/lacre/internal/cli/clitest"
	"github.com/lacre/lacre/sops/formats"
)

// fileEnv is a directory with an age key, a plain file plain.yaml and its
// encrypted form enc.yaml; run runs lacre there with the key.
type fileEnv struct {
	t   *testing.T
	dir string
	rcp string
}

const filePlain = "secret: CANARY-files\n"

func newFileEnv(t *testing.T) *fileEnv {
	dir := t.TempDir()
	t.Chdir(dir)
	id, _ := age.GenerateX25519Identity()
	os.WriteFile("key.txt", []byte(id.String()+"\n"), 0o600)
	os.WriteFile("plain.yaml", []byte(filePlain), 0o600)
	e := &fileEnv{t: t, dir: dir, rcp: id.Recipient().String()}
	e.ok("encrypt", "--age", e.rcp, "--output", "enc.yaml", "plain.yaml")
	return e
}

func (e *fileEnv) run(args ...string) (int, string, string) { return e.runEnv(nil, args...) }

// runEnv is run with more environment variables.
func (e *fileEnv) runEnv(more map[string]string, args ...string) (int, string, string) {
	env := map[string]string{"HOME": e.dir, "XDG_CONFIG_HOME": e.dir, "SOPS_AGE_KEY_FILE": filepath.Join(e.dir, "key.txt")}
	return clitest.Run(clitest.Env(more, env), lacre, args...)
}

func (e *fileEnv) ok(args ...string) string {
	e.t.Helper()
	code, out, stderr := e.run(args...)
	if code != 0 {
		e.t.Fatalf("lacre %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// decrypted is the plaintext of the encrypted file at path.
func (e *fileEnv) decrypted(path string) string {
	e.t.Helper()
	return e.ok("decrypt", "--input-type", "yaml", path)
}

// TestOutputToCharDeviceWritesThrough checks that --output to a character
// device (a null device) writes through it and leaves it a device, as a
// shell redirection does, instead of replacing it with a plaintext file.
func TestOutputToCharDeviceWritesThrough(t *testing.T) {
	e := newFileEnv(t)
	dev := "/dev/null"
	if os.Geteuid() == 0 {
		// root could replace the real /dev/null: use a null device of
		// our own.
		dev = filepath.Join(e.dir, "null")
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Skipf("mknod: %v", err)
		}
		os.Chmod(dev, 0o666)
	}
	e.ok("decrypt", "--output", dev, "enc.yaml")
	st, err := os.Lstat(dev)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is no longer a character device: %v", dev, st.Mode())
	}
	if st.Mode().Perm() != 0o666 {
		t.Fatalf("%s mode changed to %v", dev, st.Mode())
	}
}

// TestOutputToFIFOWritesThrough checks that --output to a FIFO delivers
// the output to its reader and leaves the FIFO in place.
func TestOutputToFIFOWritesThrough(t *testing.T) {
	e := newFileEnv(t)
	fifo := filepath.Join(e.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- "open: " + err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	e.ok("decrypt", "--output", fifo, "enc.yaml")
	select {
	case s := <-got:
		if s != filePlain {
			t.Fatalf("the FIFO's reader got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing was written to the FIFO")
	}
	st, err := os.Lstat(fifo)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO was replaced: %v", st.Mode())
	}
}

// TestOutputNewFileIs0600 checks that --output creates a new file 0600
// and keeps the mode of a regular file it replaces.
func TestOutputNewFileIs0600(t *testing.T) {
	e := newFileEnv(t)
	e.ok("decrypt", "--output", "new.yaml", "enc.yaml")
	if st, _ := os.Stat("new.yaml"); st.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode %v", st.Mode())
	}
	os.WriteFile("old.yaml", nil, 0o640)
	os.Chmod("old.yaml", 0o640)
	e.ok("decrypt", "--output", "old.yaml", "enc.yaml")
	if st, _ := os.Stat("old.yaml"); st.Mode().Perm() != 0o640 {
		t.Fatalf("replaced file mode %v", st.Mode())
	}
}

// TestInPlaceThroughSymlink checks that the in-place commands write
// through a symbolic link, as sops does: the link stays a link and its
// target gets the new content.
func TestInPlaceThroughSymlink(t *testing.T) {
	e := newFileEnv(t)
	os.Mkdir("real", 0o755)
	data, _ := os.ReadFile("enc.yaml")
	os.WriteFile("real/s.yaml", data, 0o600)
	os.Symlink("real/s.yaml", "link.yaml")
	check := func(step string) {
		t.Helper()
		st, err := os.Lstat("link.yaml")
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s: link.yaml is no longer a symlink (%v)", step, err)
		}
	}
	e.ok("set", "link.yaml", `["other"]`, `"x"`)
	check("set")
	if got := e.decrypted("real/s.yaml"); !strings.Contains(got, "other: x") {
		t.Fatalf("set did not reach the target:\n%s", got)
	}
	e.ok("decrypt", "-i", "link.yaml")
	check("decrypt -i")
	if got, _ := os.ReadFile("real/s.yaml"); !strings.Contains(string(got), "other: x") || strings.Contains(string(got), "sops:") {
		t.Fatalf("decrypt -i did not reach the target:\n%s", got)
	}
	e.ok("encrypt", "-i", "--age", e.rcp, "link.yaml")
	check("encrypt -i")
	if got, _ := os.ReadFile("real/s.yaml"); !strings.Contains(string(got), "sops:") {
		t.Fatalf("encrypt -i did not reach the target:\n%s", got)
	}
	code, _, _ := clitest.Run(clitest.Env(map[string]string{"HOME": e.dir, "XDG_CONFIG_HOME": e.dir,
		"SOPS_AGE_KEY_FILE": filepath.Join(e.dir, "key.txt"), "EDITOR": "sed -i s/other/edited/"}, nil), lacre, "edit", "link.yaml")
	if code != 0 {
		t.Fatalf("edit failed: %d", code)
	}
	check("edit")
	if got := e.decrypted("real/s.yaml"); !strings.Contains(got, "edited: x") {
		t.Fatalf("edit did not reach the target:\n%s", got)
	}
}

// TestInPlaceKeepsModeAndHardLinks checks that an in-place write keeps the
// file's mode bits, setgid included, and writes into a hard-linked file
// (as sops does), so that its other names see the new content.
func TestInPlaceKeepsModeAndHardLinks(t *testing.T) {
	e := newFileEnv(t)
	data, _ := os.ReadFile("enc.yaml")
	os.WriteFile("s.yaml", data, 0o600)
	os.Chmod("s.yaml", 0o640|os.ModeSetgid)
	e.ok("set", "s.yaml", `["other"]`, `"x"`)
	st, _ := os.Stat("s.yaml")
	if st.Mode()&(os.ModePerm|os.ModeSetgid) != 0o640|os.ModeSetgid {
		t.Fatalf("mode after set: %v", st.Mode())
	}

	os.WriteFile("h.yaml", data, 0o600)
	os.Link("h.yaml", "h2.yaml")
	e.ok("set", "h.yaml", `["other"]`, `"z"`)
	if got := e.decrypted("h2.yaml"); !strings.Contains(got, "other: z") {
		t.Fatalf("the hard link's other name kept the old content:\n%s", got)
	}
}

// TestEncryptInPlaceRefusesUnreadableResult checks that encrypt -i leaves
// the plaintext alone when the encrypted file would be larger than lacre
// reads back (the limit is lowered for the test), and says so.
func TestEncryptInPlaceRefusesUnreadableResult(t *testing.T) {
	e := newFileEnv(t)
	defer func(f func(formats.Format) int) { readBackLimit = f }(readBackLimit)
	readBackLimit = func(formats.Format) int { return 600 }
	plain := "a: " + strings.Repeat("x", 300) + "\n"
	os.WriteFile("big.yaml", []byte(plain), 0o600)
	code, _, stderr := e.run("encrypt", "-i", "--age", e.rcp, "big.yaml")
	if code == 0 || !strings.Contains(stderr, "big.yaml") || !strings.Contains(stderr, "can read back") {
		t.Fatalf("encrypt -i: exit %d: %s", code, stderr)
	}
	if got, _ := os.ReadFile("big.yaml"); string(got) != plain {
		t.Fatalf("the plaintext was changed:\n%s", got)
	}
}

// TestHugeInputsRefusedBeforeReading checks that a 1 GiB input (a sparse
// file: no disk used) is refused by its size, without reading it: as the
// file to decrypt, as --value-file, as .sops.yaml and as an age key file.
func TestHugeInputsRefusedBeforeReading(t *testing.T) {
	e := newFileEnv(t)
	huge := func(name string) {
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(1 << 30)
		f.Close()
	}
	huge("huge.yaml")
	huge("huge.bin")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code, _, stderr := e.run("decrypt", "huge.yaml")
	if code == 0 || !strings.Contains(stderr, "huge.yaml: file is larger than 512 MiB") {
		t.Fatalf("decrypt: exit %d: %s", code, stderr)
	}
	code, _, stderr = e.run("set", "--value-file", "enc.yaml", `["a"]`, "huge.bin")
	if code == 0 || !strings.Contains(stderr, "huge.bin: file is larger than 512 MiB") {
		t.Fatalf("set --value-file: exit %d: %s", code, stderr)
	}
	huge(".sops.yaml")
	code, _, stderr = e.run("encrypt", "plain.yaml")
	if code == 0 || !strings.Contains(stderr, ".sops.yaml") || !strings.Contains(stderr, "larger than") {
		t.Fatalf("encrypt with a huge .sops.yaml: exit %d: %s", code, stderr)
	}
	os.Remove(".sops.yaml")
	huge("key.txt")
	code, _, stderr = e.run("decrypt", "enc.yaml")
	if code == 0 || !strings.Contains(stderr, "key.txt") || !strings.Contains(stderr, "larger than") {
		t.Fatalf("decrypt with a huge key file: exit %d: %s", code, stderr)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Fatalf("allocated %d MiB to refuse huge files", n>>20)
	}
}

// TestOutputToDevStdout checks that --output /dev/stdout writes to the
// process's standard output (a pipe here), as a shell redirection would.
func TestOutputToDevStdout(t *testing.T) {
	e := newFileEnv(t)
	bin := filepath.Join(t.TempDir(), "lacre")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "decrypt", "--output", "/dev/stdout", "enc.yaml")
	cmd.Env = append(os.Environ(), "HOME="+e.dir, "XDG_CONFIG_HOME="+e.dir, "SOPS_AGE_KEY_FILE="+filepath.Join(e.dir, "key.txt"))
	out, err := cmd.Output()
	if err != nil || string(out) != filePlain {
		t.Fatalf("decrypt --output /dev/stdout: %v: %q", err, out)
	}
}
