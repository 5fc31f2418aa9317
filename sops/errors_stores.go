package sops

import "errors"

// ErrAlreadyEncrypted is returned when a plaintext file already holds sops
// metadata.
var ErrAlreadyEncrypted = errors.New("file is already encrypted")

// ErrNoDocuments is returned for a file with no documents (an empty file).
var ErrNoDocuments = errors.New("file has no documents")
