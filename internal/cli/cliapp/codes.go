package cliapp

import (
	"errors"
	"fmt"

	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops"
)

// Exit codes, the same as the sops CLI's for the same failures.
const (
	CodeGeneric                = 1
	CodeCouldNotReadInputFile  = 2
	CodeCouldNotWriteOutput    = 3
	CodeErrorDumpingTree       = 4
	CodeInvalidEncContext      = 6
	CodeInvalidSetFormat       = 7
	CodeConflictingParameters  = 8
	CodeErrorEncryptingTree    = 23
	CodeErrorDecryptingTree    = 25
	CodeCannotChangeKeys       = 49
	CodeMacMismatch            = 51
	CodeInvalidTreePathFormat  = 91
	CodeNeedAtLeastOneDocument = 92
	CodeNoFileSpecified        = 100
	CodeNoEncryptionKeyFound   = 111
	CodeCouldNotRetrieveKey    = 128
	CodeFileHasNotBeenModified = 200
	CodeNoEditorFound          = 201
	CodeFileAlreadyEncrypted   = 203
	// CodeFileDiffersFromRule is lacre's own, in sops's 2xx family of
	// refusals to act on a file: the file's selection rules or master keys
	// differ from its .sops.yaml creation rule (see --force).
	CodeFileDiffersFromRule = 204
)

// ExitError carries an exit code with an error.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// WithCode gives err the exit code code, unless it already carries one.
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: code, Err: err}
}

// Codef is fmt.Errorf with an exit code.
func Codef(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// CodeFor is the exit code of err: its own, else sops's for library errors.
func CodeFor(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	switch {
	case errors.Is(err, sops.ErrMACMismatch), errors.Is(err, sops.ErrMACDecrypt):
		return CodeMacMismatch
	case errors.Is(err, sops.ErrDecryptValue), errors.Is(err, sops.ErrNotEncryptedValue):
		return CodeErrorDecryptingTree
	case errors.Is(err, keys.ErrNoKey):
		return CodeCouldNotRetrieveKey
	case errors.Is(err, sops.ErrAlreadyEncrypted):
		return CodeFileAlreadyEncrypted
	case errors.Is(err, sops.ErrNoDocuments):
		return CodeNeedAtLeastOneDocument
	case errors.Is(err, sops.ErrInvalidPath):
		return CodeInvalidTreePathFormat
	}
	var ve *sops.ValueError
	if errors.As(err, &ve) {
		return CodeErrorDecryptingTree
	}
	var ce *keysource.ContextError
	if errors.As(err, &ce) {
		return CodeInvalidEncContext
	}
	return CodeGeneric
}
