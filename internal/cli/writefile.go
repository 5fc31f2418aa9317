package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// keptModeBits are the mode bits an in-place write keeps.
const keptModeBits = os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

// writeFile writes data to path, the way sops and a shell redirection do,
// and never widens permissions:
//   - a symbolic link is followed: its target is written and the link stays;
//   - an existing FIFO or device is written through, never replaced;
//   - a regular file with other hard links is rewritten in place, as sops
//     does, so that every name sees the new content;
//   - any other file is replaced atomically: a temporary file (0600) in
//     its directory, synced, given the owner, group and mode bits
//     (setuid, setgid and sticky included) of the file it replaces, then
//     renamed over it. A new file is 0600.
func writeFile(path string, data []byte) error {
	// Through the kernel's own resolution first: /dev/stdout and
	// /proc/self/fd/N name a pipe or terminal that has no path to follow.
	// Those names, and the rest of /dev and /proc, are written through
	// even when they lead to a regular file (a shell's "> out" or ">> out"
	// opened it): never replaced.
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		if !st.Mode().IsRegular() {
			return writeThrough(path, data, false)
		}
		if abs, _ := filepath.Abs(path); strings.HasPrefix(abs, "/dev/") || strings.HasPrefix(abs, "/proc/") {
			return writeThrough(path, data, true)
		}
	}
	target, err := resolveLinks(path)
	if err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	st, err := os.Stat(target)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	case err != nil:
		st = nil
	case st.IsDir():
		return cliapp.Codef(cliapp.CodeCouldNotWriteOutput, "%s is a directory", target)
	case !st.Mode().IsRegular():
		return writeThrough(target, data, false)
	case hardLinks(st) > 1:
		return writeThrough(target, data, true)
	}
	return replaceFile(target, data, st)
}

// resolveLinks follows symbolic links from path to the file they name,
// which need not exist (a dangling link's target is created, as sops
// does).
func resolveLinks(path string) (string, error) {
	for range 255 {
		st, err := os.Lstat(path)
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// writeThrough writes data into the existing file path, truncating it, as
// a shell's > does; sync says whether to sync it (a regular file).
func writeThrough(path string, data []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
}

// tempWritten, when set (by tests), sees each temporary file once its data
// is written.
var tempWritten func(tmp string)

// replaceFile replaces path (whose current state is st, nil for none)
// atomically with data.
func replaceFile(path string, data []byte, st fs.FileInfo) error {
	dir := filepath.Dir(path)
	removeStaleTemps(dir)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempInfix())
	if err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	tmp := f.Name()
	untrack := trackTemp(tmp)
	defer untrack()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// The file stays 0600 while it is written: the mode of the file it
	// replaces is set only once it is whole.
	if _, err := f.Write(data); err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	if err := f.Sync(); err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	if tempWritten != nil {
		tempWritten(tmp)
	}
	if st != nil {
		if err := keepOwner(f, st); err != nil {
			// Not allowed to give the file its owner back: write in place,
			// as sops does, which keeps it.
			return writeThrough(path, data, true)
		}
		// After the chown, which clears setuid and setgid.
		if err := f.Chmod(st.Mode() & keptModeBits); err != nil {
			return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
		}
	}
	if err := f.Close(); err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
	}
	ok = true
	return nil
}
