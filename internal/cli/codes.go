package cli

import (
	"errors"
	"fmt"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops"
)

// Exit codes, the same as the sops CLI's for the same failures. The
// exported ones are used by package cluster too.
const (
	CodeGeneric                = 1
	CodeCouldNotReadInputFile  = 2
	codeCouldNotWriteOutput    = 3
	codeErrorDumpingTree       = 4
	codeInvalidEncContext      = 6
	codeInvalidSetFormat       = 7
	codeConflictingParameters  = 8
	codeErrorEncryptingTree    = 23
	codeErrorDecryptingTree    = 25
	codeCannotChangeKeys       = 49
	codeMacMismatch            = 51
	codeInvalidTreePathFormat  = 91
	codeNeedAtLeastOneDocument = 92
	codeNoFileSpecified        = 100
	codeNoEncryptionKeyFound   = 111
	CodeCouldNotRetrieveKey    = 128
	codeFileHasNotBeenModified = 200
	codeNoEditorFound          = 201
	codeFileAlreadyEncrypted   = 203
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
		return codeMacMismatch
	case errors.Is(err, sops.ErrDecryptValue), errors.Is(err, sops.ErrNotEncryptedValue):
		return codeErrorDecryptingTree
	case errors.Is(err, keys.ErrNoKey):
		return CodeCouldNotRetrieveKey
	case errors.Is(err, sops.ErrAlreadyEncrypted):
		return codeFileAlreadyEncrypted
	case errors.Is(err, sops.ErrNoDocuments):
		return codeNeedAtLeastOneDocument
	case errors.Is(err, sops.ErrInvalidPath):
		return codeInvalidTreePathFormat
	}
	var ve *sops.ValueError
	if errors.As(err, &ve) {
		return codeErrorDecryptingTree
	}
	return CodeGeneric
}
