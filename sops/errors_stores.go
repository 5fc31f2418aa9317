package sops

import "errors"

// ErrAlreadyEncrypted is returned when a plaintext file already holds sops
// metadata.
var ErrAlreadyEncrypted = errors.New("file is already encrypted")

// ErrNoDocuments is returned for a file with no documents (an empty file).
var ErrNoDocuments = errors.New("file has no documents")

// ErrIntegerOutOfRange is returned by the YAML store for an integer between
// 2^63 and 2^64-1, which sops 3.13 refuses to encrypt (larger integers are
// floats in YAML, and every integer beyond int64 is a float in JSON, as in
// sops).
var ErrIntegerOutOfRange = errors.New("integer out of range: values between 2^63 and 2^64-1 are not supported (sops refuses them too); quote the value to keep it as a string")
