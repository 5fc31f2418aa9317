// Package artifact packages a source tree as a deterministic tar.gz, keeps
// artifacts in a content-addressed store, serves them over HTTP, and fetches
// and unpacks them in memory with their digest verified.
package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// DefaultIgnore is the exclusion list used when a GitRepository sets no
// spec.ignore (Flux's defaults): VCS and CI metadata and common binary
// files, and .sops.yaml (it is no Kubernetes object, and a directory
// without a kustomization.yaml takes every YAML file as one).
const DefaultIgnore = `# VCS
.git/
.gitignore
.gitmodules
.gitattributes
# Common file extensions for archives and images
*.jpg
*.jpeg
*.gif
*.png
*.wmv
*.flv
*.tar.gz
*.zip
# CI configs
.github/
.circleci/
.travis.yml
.gitlab-ci.yml
appveyor.yml
.drone.yml
cloudbuild.yaml
codeship-services.yml
codeship-steps.yml
# Unsupported files
**/.goreleaser.yml
**/.sops.yaml
**/.flux.yaml
`

// ParseIgnore parses .gitignore-syntax patterns rooted at domain (nil for
// the repository root).
func ParseIgnore(text string, domain []string) []gitignore.Pattern {
	var ps []gitignore.Pattern
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	return ps
}

// The default Limits: what one Git checkout, one artifact (packaged or
// unpacked) may hold.
const (
	DefaultMaxFiles     = 100_000
	DefaultMaxFileSize  = 64 << 20
	DefaultMaxTotalSize = 256 << 20
)

// Limits bound what a Git checkout (source.Checkout), Build and Extract
// accept; the zero value of a field means its default.
type Limits struct {
	MaxFiles     int   // 0: DefaultMaxFiles
	MaxFileSize  int64 // 0: DefaultMaxFileSize
	MaxTotalSize int64 // 0: DefaultMaxTotalSize, the sum of the files' sizes
}

// WithDefaults fills the zero fields with the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxFileSize == 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxTotalSize == 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	return l
}

// FormatSize writes a byte count for messages: "256 MiB", "1500 bytes".
func FormatSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ErrTooLarge is returned when a tree or an archive exceeds the limits.
var ErrTooLarge = errors.New("artifact exceeds the size limits")

// Build packages the directories and regular files of fsys as a gzip
// tar, as Flux's source-controller does: entries in lexical order, uid/gid
// 0, zero mtimes, directories 0750, files 0600 (0700 when executable). A
// directory whose files are all ignored is kept (so a path that holds only
// a .sops.yaml still exists in the artifact and builds to nothing). The
// same tree always gives the same bytes. ignore holds the spec's patterns
// (DefaultIgnore when nil); .sourceignore files found in the tree add
// theirs for their directory.
func Build(fsys fs.FS, ignore []gitignore.Pattern, lim Limits) ([]byte, error) {
	entries, err := collect(fsys, ignore, lim.WithDefaults(), true)
	if err != nil {
		return nil, err
	}
	return archive(fsys, entries)
}

// BuildAll packages every directory and regular file of fsys as Build
// does, with no ignore rules: .sourceignore files are plain files. A
// Bucket's objects, already filtered as Flux filters them, are packaged so.
func BuildAll(fsys fs.FS, lim Limits) ([]byte, error) {
	entries, err := collect(fsys, []gitignore.Pattern{}, lim.WithDefaults(), false)
	if err != nil {
		return nil, err
	}
	return archive(fsys, entries)
}

// archive writes entries of fsys as a deterministic gzip tar.
func archive(fsys fs.FS, entries []entry) ([]byte, error) {
	var err error
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	gz.ModTime = time.Time{}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: e.name + "/", Mode: 0o750, ModTime: time.Unix(0, 0).UTC(), Format: tar.FormatPAX}
		var data []byte
		if !e.dir {
			if data, err = fs.ReadFile(fsys, e.name); err != nil {
				return nil, err
			}
			hdr.Typeflag, hdr.Name, hdr.Mode, hdr.Size = tar.TypeReg, e.name, 0o600, int64(len(data))
			if e.mode&0o111 != 0 {
				hdr.Mode = 0o700
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// entry is a directory or regular file that goes into an artifact.
type entry struct {
	name string
	mode fs.FileMode
	dir  bool
}

// collect lists the entries of fsys that are not ignored, sorted by name
// (a directory sorts as its name with a trailing slash), within lim;
// sourceignore: .sourceignore files add their patterns.
func collect(fsys fs.FS, ignore []gitignore.Pattern, lim Limits, sourceignore bool) ([]entry, error) {
	if ignore == nil {
		ignore = ParseIgnore(DefaultIgnore, nil)
	}
	patterns := slices.Clone(ignore)
	var entries []entry
	var total int64
	var files, dirs int
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		parts := strings.Split(p, "/")
		if gitignore.NewMatcher(patterns).Match(parts, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if data, err := fs.ReadFile(fsys, path.Join(p, ".sourceignore")); err == nil && sourceignore {
				patterns = append(patterns, ParseIgnore(string(data), parts)...)
			}
			if dirs++; dirs > lim.MaxFiles {
				return ErrTooLarge
			}
			entries = append(entries, entry{name: p, dir: true})
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and devices are never archived
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > lim.MaxFileSize {
			return fmt.Errorf("%w: %s is %d bytes", ErrTooLarge, p, info.Size())
		}
		total += info.Size()
		if files++; total > lim.MaxTotalSize || files > lim.MaxFiles {
			return ErrTooLarge
		}
		entries = append(entries, entry{name: p, mode: info.Mode()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Root .sourceignore applies to the whole tree: re-filter with it.
	if data, err := fs.ReadFile(fsys, ".sourceignore"); err == nil && sourceignore {
		root := gitignore.NewMatcher(append(slices.Clone(ignore), ParseIgnore(string(data), nil)...))
		entries = slices.DeleteFunc(entries, func(e entry) bool { return root.Match(strings.Split(e.name, "/"), e.dir) })
	}
	key := func(e entry) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(key(a), key(b)) })
	return entries, nil
}

// Digest returns the sha256 digest of data as "sha256:<hex>".
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ErrDigestMismatch is returned when an artifact does not match its digest.
var ErrDigestMismatch = errors.New("artifact digest mismatch: the artifact was modified or corrupted")

// Verify checks data against a digest "sha256:<hex>" (a bare hex digest is
// taken as sha256).
func Verify(data []byte, digest string) error {
	algo, hexsum, ok := strings.Cut(digest, ":")
	if !ok {
		algo, hexsum = "sha256", digest
	}
	if algo != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q", algo)
	}
	sum := sha256.Sum256(data)
	if !strings.EqualFold(hex.EncodeToString(sum[:]), hexsum) {
		return ErrDigestMismatch
	}
	return nil
}

// Files is an unpacked artifact: file path (slash-separated, relative) to
// contents. It lives only in memory.
type Files map[string][]byte

// Extract unpacks a tar.gz artifact's files into memory (ExtractTree
// without the directories).
func Extract(data []byte, lim Limits) (Files, error) {
	files, _, err := ExtractTree(data, lim)
	return files, err
}

// ExtractTree unpacks a tar.gz artifact into memory: its regular files,
// and its directories by relative name ("" is the root), those the
// archive holds as entries and those its files imply (an artifact built
// before directories were archived has none of its own). Absolute paths
// and ".." components are refused; links and devices are skipped; sizes
// are bounded (a gzip bomb stops at the limits). A first pass reads only
// the headers, so an archive over the limits (file or directory count,
// any file, the files' total) is refused before any content is held.
func ExtractTree(data []byte, lim Limits) (Files, map[string]bool, error) {
	lim = lim.WithDefaults()
	if err := walkArchive(data, lim, nil, nil); err != nil {
		return nil, nil, err
	}
	out := Files{}
	dirs := map[string]bool{"": true}
	err := walkArchive(data, lim, func(name string, size int64, r io.Reader) error {
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("corrupt artifact: %w", err)
		}
		out[name] = b
		addParents(dirs, name)
		return nil
	}, func(name string) {
		dirs[name] = true
		addParents(dirs, name)
	})
	if err != nil {
		return nil, nil, err
	}
	return out, dirs, nil
}

// addParents records the directories above the relative name n.
func addParents(dirs map[string]bool, n string) {
	for d := path.Dir(n); d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
		dirs[d] = true
	}
}

// walkArchive checks every regular and directory member of a tar.gz
// artifact against lim and passes it to read or dir (when not nil).
func walkArchive(data []byte, lim Limits, read func(name string, size int64, r io.Reader) error, dir func(name string)) error {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("artifact is not a gzip file: %v", err)
	}
	// Every decompressed byte counts, skipped members and headers too: a
	// bomb of huge directory or device entries stops at the bound as well.
	bound := 2*lim.MaxTotalSize + 1<<20
	tr := tar.NewReader(&boundedReader{r: gz, left: bound})
	var total int64
	var files, dirs int
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("%w: more than %d bytes decompressed", ErrTooLarge, bound)
		}
		if err != nil {
			return fmt.Errorf("corrupt artifact: %v", err)
		}
		if hdr.Typeflag == tar.TypeDir {
			if c := path.Clean(hdr.Name); c == "." || c == "./" {
				continue // the root (Flux archives it as ".")
			}
			name, err := cleanPath(hdr.Name)
			if err != nil {
				return err
			}
			if dirs++; dirs > lim.MaxFiles {
				return fmt.Errorf("%w: more than %d directories", ErrTooLarge, lim.MaxFiles)
			}
			if dir != nil {
				dir(name)
			}
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // links, devices, fifos
		}
		name, err := cleanPath(hdr.Name)
		if err != nil {
			return err
		}
		if files++; files > lim.MaxFiles {
			return fmt.Errorf("%w: more than %d files", ErrTooLarge, lim.MaxFiles)
		}
		if hdr.Size < 0 || hdr.Size > lim.MaxFileSize {
			return fmt.Errorf("%w: %s is larger than %s", ErrTooLarge, name, FormatSize(lim.MaxFileSize))
		}
		if total += hdr.Size; total > lim.MaxTotalSize {
			return fmt.Errorf("%w: unpacked artifact exceeds %s (at %s)", ErrTooLarge, FormatSize(lim.MaxTotalSize), name)
		}
		if read != nil {
			if err := read(name, hdr.Size, tr); errors.Is(err, ErrTooLarge) {
				return fmt.Errorf("%w: more than %d bytes decompressed", ErrTooLarge, bound)
			} else if err != nil {
				return err
			}
		}
	}
}

// boundedReader fails with ErrTooLarge once more than left bytes are read.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// cleanPath validates an archive member name.
func cleanPath(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return "", fmt.Errorf("artifact holds an unsafe path %q", name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") || c == "." {
		return "", fmt.Errorf("artifact holds an unsafe path %q", name)
	}
	return c, nil
}
