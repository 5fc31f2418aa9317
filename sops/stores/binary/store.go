// Package binary is the binary store: the whole file is one value, "data",
// and the encrypted form is sops's JSON binary format.
package binary

import (
	"errors"
	"fmt"

	"github.com/lacre/lacre/sops"
	jsonstore "github.com/lacre/lacre/sops/stores/json"
)

// Store reads and writes arbitrary files.
type Store struct {
	json *jsonstore.Store
}

// New returns a binary store; indent is the JSON indent of the encrypted
// form (-1: a tab, as sops).
func New(indent int) *Store { return &Store{json: jsonstore.New(indent)} }

var _ sops.Store = (*Store)(nil)

// LoadPlainFile wraps the bytes as {data: ...}.
func (s *Store) LoadPlainFile(in []byte) (sops.TreeBranches, error) {
	if len(in) > jsonstore.DefaultMaxSize {
		return nil, jsonstore.ErrTooLarge
	}
	return sops.TreeBranches{{{Key: "data", Value: string(in)}}}, nil
}

// LoadEncryptedFile reads the JSON envelope.
func (s *Store) LoadEncryptedFile(in []byte) (sops.Tree, error) { return s.json.LoadEncryptedFile(in) }

// EmitEncryptedFile writes the JSON envelope.
func (s *Store) EmitEncryptedFile(t sops.Tree) ([]byte, error) { return s.json.EmitEncryptedFile(t) }

// EmitPlainFile writes the bytes of "data".
func (s *Store) EmitPlainFile(branches sops.TreeBranches) ([]byte, error) {
	if len(branches) != 1 {
		return nil, errors.New("a binary file holds exactly one document")
	}
	for _, it := range branches[0] {
		if it.Key == "data" {
			if v, ok := it.Value.(string); ok {
				return []byte(v), nil
			}
			return nil, errors.New("the binary store's data is not a string")
		}
	}
	return nil, errors.New("no binary data found in the tree")
}

// EmitValue is not supported: a binary file has no structure.
func (s *Store) EmitValue(v any) ([]byte, error) {
	return nil, fmt.Errorf("binary files are not structured; extracting a value is not possible")
}
