package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/sops/formats"
)

// maxInputSize bounds every file lacre reads.
const maxInputSize = 512 << 20

// readInput reads a file, or stdin for "-".
func (a *app) readInput(path string) ([]byte, error) {
	var r io.Reader
	size := 0 // the size of a regular file, to read it into one buffer
	if path == "-" {
		r = a.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, cliapp.Codef(cliapp.CodeNoFileSpecified, "%s: file does not exist", path)
			}
			return nil, cliapp.WithCode(cliapp.CodeCouldNotReadInputFile, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, cliapp.Codef(cliapp.CodeCouldNotReadInputFile, "%s is a directory (use -r to process directories)", path)
		} else if err == nil && st.Mode().IsRegular() && st.Size() > maxInputSize {
			return nil, errTooLarge(path)
		} else if err == nil && st.Mode().IsRegular() {
			size = int(st.Size())
		}
		r = f
	}
	// io.ReadAll grows its buffer step by step; with the size known, one
	// buffer is enough (ReadFrom wants MinRead bytes free to see the end).
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(r, maxInputSize+1))
	data := buf.Bytes()
	if err != nil {
		return nil, cliapp.WithCode(cliapp.CodeCouldNotReadInputFile, fmt.Errorf("%s: %v", path, err))
	}
	if len(data) > maxInputSize {
		return nil, errTooLarge(path)
	}
	return data, nil
}

func errTooLarge(path string) error {
	return cliapp.Codef(cliapp.CodeCouldNotReadInputFile, "%s: file is larger than %d MiB", path, maxInputSize>>20)
}

// expandPaths turns the arguments into files. Directories need recursive;
// then every regular file below them whose format is known (by extension) is
// taken, hidden files and directories skipped.
func expandPaths(args []string, recursive bool) ([]string, error) {
	var out []string
	for _, p := range args {
		if p == "-" {
			out = append(out, p)
			continue
		}
		st, err := os.Stat(p)
		if err != nil || !st.IsDir() {
			out = append(out, p)
			continue
		}
		if !recursive {
			return nil, cliapp.Codef(cliapp.CodeCouldNotReadInputFile, "%s is a directory (use -r to process directories)", p)
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if path != p && strings.HasPrefix(name, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, cliapp.WithCode(cliapp.CodeCouldNotReadInputFile, err)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// formatFlags are --input-type and --output-type.
type formatFlags struct {
	inputType, outputType string
	filenameOverride      string
}

func (ff *formatFlags) formats(path string) (in, out formats.Format, err error) {
	name := path
	if ff.filenameOverride != "" {
		name = ff.filenameOverride
	}
	in = formats.FormatForPath(name)
	if ff.inputType != "" {
		if in, err = formats.ParseFormat(ff.inputType); err != nil {
			return 0, 0, cliapp.WithCode(cliapp.CodeGeneric, err)
		}
	}
	out = in
	if ff.outputType != "" {
		if out, err = formats.ParseFormat(ff.outputType); err != nil {
			return 0, 0, cliapp.WithCode(cliapp.CodeGeneric, err)
		}
	}
	return in, out, nil
}
