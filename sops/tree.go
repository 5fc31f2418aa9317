// Package sops implements the SOPS encrypted-file format: the document tree,
// the selection rules that say which values are encrypted ([Selection]),
// value encryption (AES-256-GCM with the key path as additional data), the
// MAC and the metadata section. It is interoperable with the sops 3.13 CLI.
//
// Stores (YAML, JSON, dotenv, INI, binary) turn bytes into a [Tree] and back;
// they live in the stores subpackages. Master keys live in package keys and
// its subpackages; this package only sees them through [keys.Identity] and
// [keys.Recipient].
package sops

import (
	"strings"
	"time"

	"github.com/lacre/lacre/keys"
)

// A Comment is a comment line of the document. In a TreeBranch it is the Key
// of an item whose Value is nil; in a list it is an element.
type Comment struct {
	Value  string // the text after '#', including a leading space if any
	Inline bool   // a line comment after a value (YAML), re-emitted on the same line
}

// A TreeItem is one entry of a mapping. Key is a string or a Comment.
type TreeItem struct {
	Key   any
	Value any
}

// A TreeBranch is an ordered mapping.
//
// Values are: nil, string, int, float64, bool, time.Time, Comment (list
// elements only), []any, and TreeBranch.
type TreeBranch []TreeItem

// TreeBranches are the documents of a file.
type TreeBranches []TreeBranch

// A Tree is a parsed SOPS file: its documents and its metadata.
type Tree struct {
	Branches TreeBranches
	Metadata Metadata
	// FilePath is the file the tree was read from, for messages.
	FilePath string
}

// Metadata is the `sops` section of an encrypted file.
type Metadata struct {
	KeyGroups       []keys.Group
	ShamirThreshold int
	LastModified    time.Time
	// MAC is the encrypted MAC, as stored (ENC[...]).
	MAC     string
	Version string

	// Selection holds the selection rules and mac_only_encrypted.
	Selection

	// Unknown holds metadata keys this version does not know, kept as read.
	Unknown TreeBranch
}

// A Store reads and writes one file format.
type Store interface {
	// LoadPlainFile parses a plaintext file into its documents.
	LoadPlainFile(data []byte) (TreeBranches, error)
	// LoadEncryptedFile parses an encrypted file, metadata included.
	LoadEncryptedFile(data []byte) (Tree, error)
	// EmitPlainFile writes documents as a plaintext file.
	EmitPlainFile(TreeBranches) ([]byte, error)
	// EmitEncryptedFile writes an encrypted tree, metadata included.
	EmitEncryptedFile(Tree) ([]byte, error)
	// EmitValue writes a single value (a scalar or a branch), for --extract.
	EmitValue(v any) ([]byte, error)
}

// LoadPlainDocument is LoadPlainFile for the stores whose files hold one
// document: it loads in with load and refuses (ErrAlreadyEncrypted) a
// document that holds metadata: a top-level key "sops" or, for a store
// that flattens the metadata into prefixed keys, a key starting with
// metaPrefix (dotenv's "sops_").
func LoadPlainDocument(in []byte, load func([]byte) (TreeBranch, error), metaPrefix string) (TreeBranches, error) {
	b, err := load(in)
	if err != nil {
		return nil, err
	}
	for _, it := range b {
		k, _ := it.Key.(string)
		if metaPrefix == "" && k == MetadataKey || metaPrefix != "" && strings.HasPrefix(k, metaPrefix) {
			return nil, ErrAlreadyEncrypted
		}
	}
	return TreeBranches{b}, nil
}
