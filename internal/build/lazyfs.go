package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/sops/formats"
)

// lazyFS is the build's file system: an in-memory file system that a
// file of the artifact enters (checked for alias bombs and, when
// encrypted, decrypted) the first time the build looks at it. Builds are
// sequential (kustomize reads files one at a time).
type lazyFS struct {
	filesys.FileSystem
	files artifact.Files // relative names
	ctx   context.Context
	opts  Options
	res   *Result
	prov  proven          // hashes of the values decryption produced
	dirs  map[string]bool // the artifact's directories (relative), from Options.Dirs or built on first use
	roles generatorInputs // how generators read their inputs
	done  map[string]bool // absolute paths loaded or written
	err   error           // the first check or decryption error
}

func (l *lazyFS) firstErr(err error) error {
	if l.err != nil {
		return l.err
	}
	return err
}

func (l *lazyFS) fail(err error) error {
	if l.err == nil {
		l.err = err
	}
	return err
}

func (l *lazyFS) isDir(p string) bool {
	if l.dirs == nil {
		l.dirs = l.opts.Dirs
		if l.dirs == nil {
			l.dirs = artifact.Dirs(l.files)
		}
	}
	if p == root {
		return true
	}
	n, ok := rel(p)
	return ok && l.dirs[n]
}

// rel returns p's name in the artifact, if it is below root.
func rel(p string) (string, bool) {
	if !strings.HasPrefix(p, root+"/") {
		return "", false
	}
	return p[len(root)+1:], true
}

// load copies the artifact's file at p (absolute, clean) into the file
// system, once: checked, and decrypted when encrypted and decryption is on.
func (l *lazyFS) load(p string) error {
	if l.done[p] {
		return nil
	}
	n, ok := rel(p)
	if !ok {
		return nil
	}
	data, ok := l.files[n]
	if !ok {
		return nil
	}
	l.done[p] = true
	if err := checkAliases(n, data); err != nil {
		return l.fail(&FileError{n, err})
	}
	// Encrypted files are left as they are without decryption: encrypted
	// Secrets are refused after the build, other objects and generator
	// inputs stay ciphertext (as in Flux).
	if f, enc := l.roles.sniff(p, n, data); enc && l.opts.Decrypt && (l.roles[p].secret || !decryptDisabled(f, data)) {
		if len(data) > MaxEncryptedFileSize {
			return l.fail(&FileError{n, fmt.Errorf("encrypted file is larger than %d MiB", MaxEncryptedFileSize>>20)})
		}
		plain, err := l.prov.decryptFile(l.ctx, data, f, l.opts)
		if err != nil {
			return l.fail(&FileError{n, err})
		}
		data = plain
		l.res.Decrypted++
	}
	return l.FileSystem.WriteFile(p, data)
}

// loadDir loads the files below the directory p (all levels when deep,
// else its own files) and creates its subdirectories.
func (l *lazyFS) loadDir(p string, deep bool) error {
	if !l.isDir(p) {
		return nil
	}
	if err := l.FileSystem.MkdirAll(p); err != nil {
		return err
	}
	prefix := ""
	if p != root {
		prefix, _ = rel(p)
		prefix += "/"
	}
	for n := range l.files {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		rest := n[len(prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 && !deep {
			if err := l.FileSystem.MkdirAll(path.Join(p, rest[:i])); err != nil {
				return err
			}
			continue
		}
		if err := l.load(path.Join(root, n)); err != nil {
			return err
		}
	}
	return nil
}

// prepare makes p present in the file system, if the artifact has it.
func (l *lazyFS) prepare(p string) (string, error) {
	p = path.Clean(p)
	if l.isDir(p) {
		return p, l.FileSystem.MkdirAll(p)
	}
	return p, l.load(p)
}

func (l *lazyFS) Open(p string) (filesys.File, error) {
	p, err := l.prepare(p)
	if err != nil {
		return nil, err
	}
	return l.FileSystem.Open(p)
}

func (l *lazyFS) ReadFile(p string) ([]byte, error) {
	p, err := l.prepare(p)
	if err != nil {
		return nil, err
	}
	return l.FileSystem.ReadFile(p)
}

func (l *lazyFS) IsDir(p string) bool {
	return l.isDir(path.Clean(p)) || l.FileSystem.IsDir(p)
}

func (l *lazyFS) Exists(p string) bool {
	c := path.Clean(p)
	if l.isDir(c) {
		return true
	}
	if n, ok := rel(c); ok {
		if _, ok := l.files[n]; ok {
			return true
		}
	}
	return l.FileSystem.Exists(p)
}

func (l *lazyFS) ReadDir(p string) ([]string, error) {
	if err := l.loadDir(path.Clean(p), false); err != nil {
		return nil, err
	}
	return l.FileSystem.ReadDir(p)
}

func (l *lazyFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if _, err := l.prepare(p); err != nil {
		return "", "", err
	}
	return l.FileSystem.CleanedAbs(p)
}

func (l *lazyFS) Glob(pattern string) ([]string, error) {
	if err := l.loadDir(root, true); err != nil {
		return nil, err
	}
	return l.FileSystem.Glob(pattern)
}

func (l *lazyFS) Walk(p string, fn filepath.WalkFunc) error {
	if err := l.loadDir(path.Clean(p), true); err != nil {
		return err
	}
	return l.FileSystem.Walk(p, fn)
}

func (l *lazyFS) RemoveAll(p string) error {
	if err := l.loadDir(path.Clean(p), true); err != nil {
		return err
	}
	l.done[path.Clean(p)] = true
	return l.FileSystem.RemoveAll(p)
}

// Writes replace the artifact's file, which is then never loaded.
func (l *lazyFS) WriteFile(p string, data []byte) error {
	c := path.Clean(p)
	l.done[c] = true
	if err := l.FileSystem.MkdirAll(path.Dir(c)); err != nil {
		return err
	}
	return l.FileSystem.WriteFile(p, data)
}

func (l *lazyFS) Create(p string) (filesys.File, error) {
	c := path.Clean(p)
	l.done[c] = true
	if err := l.FileSystem.MkdirAll(path.Dir(c)); err != nil {
		return nil, err
	}
	return l.FileSystem.Create(p)
}

// ErrInvalidUTF8 names a line of an env file that kustomize refuses for
// invalid UTF-8 (its own message quotes the line).
var ErrInvalidUTF8 = errors.New("holds invalid UTF-8 (kustomize reads env files as UTF-8 text)")

// invalidUTF8 returns, for kustomize's "line ... has invalid utf8 bytes"
// error, the file and line it means: the first loaded file (dotenv files
// first) with a line that is not valid UTF-8. Nil when there is none.
func (l *lazyFS) invalidUTF8() error {
	names := slices.Sorted(maps.Keys(l.done))
	for _, envFirst := range []bool{true, false} {
		for _, p := range names {
			n, ok := rel(p)
			if !ok || (formats.FormatForPath(n) == formats.Dotenv) != envFirst || !l.FileSystem.Exists(p) || l.FileSystem.IsDir(p) {
				continue
			}
			data, err := l.FileSystem.ReadFile(p)
			if err != nil || utf8.Valid(data) {
				continue
			}
			i := 0
			for line := range bytes.Lines(data) {
				i++
				if !utf8.Valid(line) {
					return &FileError{n, fmt.Errorf("line %d %w", i, ErrInvalidUTF8)}
				}
			}
		}
	}
	return nil
}
