package cli

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/spf13/pflag"
)

// outputFlags say where results go.
type outputFlags struct {
	inPlace bool
	output  string
}

func (of *outputFlags) register(f *pflag.FlagSet) {
	f.BoolVarP(&of.inPlace, "in-place", "i", false, "write the output back to the file")
	f.StringVar(&of.output, "output", "", "write the output to this file")
}

// batchFlags are the flags of the commands that take several files: their
// formats, where the output goes, and -r.
type batchFlags struct {
	ff        formatFlags
	of        outputFlags
	recursive bool
}

// register adds --in-place, --output, --output-type and -r, "<verb> every
// file below the given directories".
func (bf *batchFlags) register(f *pflag.FlagSet, verb string) {
	bf.of.register(f)
	f.StringVar(&bf.ff.outputType, "output-type", "", "output format (default: the input format)")
	f.BoolVarP(&bf.recursive, "recursive", "r", false, verb+" every file below the given directories")
}

// runBatch runs a command over several files: it expands args (see
// expandPaths; with verb, more than one file needs --in-place: "<verb>
// several files needs --in-place"), runs parse (the command's own flags;
// may be nil), loads the session and runs fn over the files (see runFiles).
func (a *app) runBatch(ctx context.Context, args []string, bf *batchFlags, verb string, parse func() error, fn func(ctx context.Context, s *session, file string) ([]byte, error)) error {
	files, err := expandPaths(args, bf.recursive)
	if err != nil {
		return err
	}
	if verb != "" && len(files) > 1 && !bf.of.inPlace {
		return cliapp.Codef(cliapp.CodeConflictingParameters, "%s several files needs --in-place", verb)
	}
	if parse != nil {
		if err := parse(); err != nil {
			return err
		}
	}
	s, err := a.newSession()
	if err != nil {
		return err
	}
	return a.runFiles(ctx, files, bf.of, func(ctx context.Context, file string) ([]byte, error) {
		return fn(ctx, s, file)
	})
}

// fileFunc turns one input file into its output bytes.
type fileFunc func(ctx context.Context, path string) ([]byte, error)

// runFiles runs fn over files in parallel, and writes each result in place,
// to --output, or to stdout in argument order. A failure on one file does
// not stop the others; every failure is reported with its file name and the
// exit code is the first failure's.
func (a *app) runFiles(ctx context.Context, files []string, of outputFlags, fn fileFunc) error {
	if len(files) == 0 {
		return cliapp.Codef(cliapp.CodeNoFileSpecified, "no file specified")
	}
	if of.inPlace && of.output != "" {
		return cliapp.Codef(cliapp.CodeConflictingParameters, "--in-place and --output cannot be used together")
	}
	if len(files) > 1 && of.output != "" {
		return cliapp.Codef(cliapp.CodeConflictingParameters, "--output takes a single input file")
	}
	if of.inPlace {
		for _, f := range files {
			if f == "-" {
				return cliapp.Codef(cliapp.CodeConflictingParameters, "--in-place cannot be used with stdin")
			}
		}
	}
	if len(files) == 1 {
		out, err := fn(ctx, files[0])
		if err != nil {
			if files[0] == "-" {
				return err
			}
			return prefixErr(files[0], err)
		}
		return a.emit(files[0], of, out)
	}

	type result struct {
		out  []byte
		err  error
		done chan struct{}
	}
	results := make([]*result, len(files))
	for i := range results {
		results[i] = &result{done: make(chan struct{})}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r := results[i]
				r.out, r.err = fn(ctx, files[i])
				if r.err == nil && of.inPlace {
					r.err = writeFile(files[i], r.out)
					r.out = nil
				}
				close(r.done)
			}
		}()
	}
	go func() {
		for i := range files {
			work <- i
		}
		close(work)
	}()
	var first error
	for i, r := range results {
		<-r.done
		if r.err != nil {
			fmt.Fprintf(a.Stderr, "lacre: error: %s\n", prefixErr(files[i], r.err))
			if first == nil {
				first = r.err
			}
			continue
		}
		if !of.inPlace {
			if _, err := a.Stdout.Write(r.out); err != nil && first == nil {
				first = cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
			}
		}
		r.out = nil
	}
	wg.Wait()
	if first != nil {
		return cliapp.SilentExit(cliapp.CodeFor(first))
	}
	return nil
}

func (a *app) emit(path string, of outputFlags, out []byte) error {
	switch {
	case of.inPlace:
		return prefixErr(path, writeFile(path, out))
	case of.output != "":
		return prefixErr(of.output, writeFile(of.output, out))
	}
	_, err := a.Stdout.Write(out)
	return cliapp.WithCode(cliapp.CodeCouldNotWriteOutput, err)
}

// prefixErr names the file in an error, keeping its exit code.
func prefixErr(path string, err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), path+":") {
		return err
	}
	return &cliapp.ExitError{Code: cliapp.CodeFor(err), Err: &fileError{path: path, err: err}}
}

type fileError struct {
	path string
	err  error
}

func (e *fileError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }
