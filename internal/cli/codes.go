package cli

import (
	"errors"
	"fmt"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops"
)

// Exit codes, the same as the sops CLI's for the same failures.
const (
	codeGeneric                = 1
	codeCouldNotReadInputFile  = 2
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
	codeCouldNotRetrieveKey    = 128
	codeFileHasNotBeenModified = 200
	codeNoEditorFound          = 201
	codeFileAlreadyEncrypted   = 203
)

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: code, err: err}
}

func codef(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// codeFor maps library errors to sops's exit codes.
func codeFor(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	switch {
	case errors.Is(err, sops.ErrMACMismatch), errors.Is(err, sops.ErrMACDecrypt):
		return codeMacMismatch
	case errors.Is(err, sops.ErrDecryptValue), errors.Is(err, sops.ErrNotEncryptedValue):
		return codeErrorDecryptingTree
	case errors.Is(err, keys.ErrNoKey):
		return codeCouldNotRetrieveKey
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
	return codeGeneric
}
