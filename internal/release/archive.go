package release

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// docFiles go into every archive beside the binaries, when present.
var docFiles = []string{"LICENSE", "README.md"}

// archive writes p's tar.gz (zip for Windows): a top directory named as
// the archive, holding the binaries and docFiles.
func (b *builder) archive(p Platform, binDir string) error {
	name := b.name(p)
	stage := filepath.Join(b.work, "stage", name)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	for _, c := range Commands {
		if err := copyFile(filepath.Join(binDir, exe(p, c)), filepath.Join(stage, exe(p, c)), 0o755); err != nil {
			return err
		}
	}
	for _, d := range docFiles {
		if err := copyFile(filepath.Join(b.o.Root, d), filepath.Join(stage, d), 0o644); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	ext := ".tar.gz"
	if p.OS == "windows" {
		ext = ".zip"
	}
	f, err := os.CreateTemp(b.o.Out, ".archive-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if ext == ".zip" {
		err = zipDir(f, filepath.Dir(stage), b.o.Epoch)
	} else {
		gz, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
		if err = tarDir(gz, filepath.Dir(stage), b.o.Epoch); err == nil {
			err = gz.Close()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(b.o.Out, name+ext))
}

// walkSorted lists the files and directories under root, sorted by
// slash path (WalkDir's lexical order is per directory).
func walkSorted(root string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		names = append(names, filepath.ToSlash(rel(root, p)))
		return nil
	})
	slices.Sort(names)
	return names, err
}

// tarDir writes the tree under root as a tar: sorted entries, owner 0,
// modes 0755 or 0644, every time mt.
func tarDir(w io.Writer, root string, mt time.Time) error {
	names, err := walkSorted(root)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, n := range names {
		fi, err := os.Lstat(filepath.Join(root, n))
		if err != nil {
			return err
		}
		h := &tar.Header{Name: n, ModTime: mt.UTC(), Mode: mode(fi), Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, n+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.IsDir() {
			if err := copyInto(tw, filepath.Join(root, n)); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// zipDir is tarDir's zip.
func zipDir(w io.Writer, root string, mt time.Time) error {
	names, err := walkSorted(root)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, n := range names {
		fi, err := os.Lstat(filepath.Join(root, n))
		if err != nil {
			return err
		}
		h := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: mt.UTC()}
		h.SetMode(fs.FileMode(mode(fi)))
		if fi.IsDir() {
			h.Name, h.Method = n+"/", zip.Store
			h.SetMode(fs.ModeDir | 0o755)
		}
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			if err := copyInto(fw, filepath.Join(root, n)); err != nil {
				return err
			}
		}
	}
	return zw.Close()
}

func mode(fi fs.FileInfo) int64 {
	if fi.IsDir() || fi.Mode()&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func copyInto(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func copyFile(src, dst string, perm fs.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, perm)
}

// writeFile writes data to path atomically.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// writeChecksums writes "SHA256  name" for every file in dir (sorted) to
// dir/name, and returns the files, the checksums file last.
func writeChecksums(dir, name string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	var sb strings.Builder
	for _, e := range ents { // sorted by name
		if e.IsDir() || e.Name() == name || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sum, err := fileSHA256(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&sb, "%s  %s\n", sum, e.Name())
		files = append(files, e.Name())
	}
	if err := writeFile(filepath.Join(dir, name), []byte(sb.String())); err != nil {
		return nil, err
	}
	return append(files, name), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
