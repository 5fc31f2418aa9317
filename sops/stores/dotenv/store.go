// Package dotenv is the dotenv store, byte-compatible with sops 3.13:
// KEY=value lines split at the first '=', '#' comment lines, "\n" escapes,
// and the metadata as sops_* lines.
package dotenv

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/flatten"
)

// Prefix marks metadata lines.
const Prefix = "sops_"

// MaxSize bounds the input.
const MaxSize = 64 << 20

// Store reads and writes dotenv files.
type Store struct{}

// New returns a dotenv store.
func New() *Store { return &Store{} }

var _ sops.Store = (*Store)(nil)

func (s *Store) load(in []byte) (sops.TreeBranch, error) {
	if len(in) > MaxSize {
		return nil, errors.New("dotenv input too large")
	}
	var b sops.TreeBranch
	for n, line := range bytes.Split(in, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == '#' {
			b = append(b, sops.TreeItem{Key: sops.Comment{Value: string(line[1:])}})
			continue
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			return nil, fmt.Errorf("invalid dotenv line %d: no '='", n+1)
		}
		b = append(b, sops.TreeItem{Key: string(k), Value: strings.ReplaceAll(string(v), `\n`, "\n")})
	}
	return b, nil
}

// LoadPlainFile parses a dotenv file; keys starting with sops_ are refused
// as already encrypted.
func (s *Store) LoadPlainFile(in []byte) (sops.TreeBranches, error) {
	return sops.LoadPlainDocument(in, s.load, Prefix)
}

// LoadEncryptedFile parses an encrypted dotenv file.
func (s *Store) LoadEncryptedFile(in []byte) (sops.Tree, error) {
	b, err := s.load(in)
	if err != nil {
		return sops.Tree{}, err
	}
	var meta, rest sops.TreeBranch
	for _, it := range b {
		if k, ok := it.Key.(string); ok && strings.HasPrefix(k, Prefix) {
			meta = append(meta, sops.TreeItem{Key: strings.TrimPrefix(k, Prefix), Value: it.Value})
			continue
		}
		rest = append(rest, it)
	}
	if meta == nil {
		return sops.Tree{}, sops.ErrMetadataNotFound
	}
	mb, err := flatten.Unflatten(meta)
	if err != nil {
		return sops.Tree{}, &sops.MetadataError{Field: "sops_*", Err: err}
	}
	m, err := sops.MetadataFromBranch(mb)
	if err != nil {
		return sops.Tree{}, err
	}
	return sops.Tree{Branches: sops.TreeBranches{rest}, Metadata: m}, nil
}

// EmitPlainFile writes KEY=value lines.
func (s *Store) EmitPlainFile(branches sops.TreeBranches) ([]byte, error) {
	if len(branches) != 1 {
		return nil, fmt.Errorf("a dotenv file holds exactly one document, not %d", len(branches))
	}
	var buf bytes.Buffer
	for _, it := range branches[0] {
		if flatten.IsComplex(it.Value) {
			return nil, fmt.Errorf("cannot write a nested value to a dotenv file (key %v)", it.Key)
		}
		if c, ok := it.Key.(sops.Comment); ok {
			buf.WriteString("#" + c.Value + "\n")
			continue
		}
		v, ok := it.Value.(string)
		if ok {
			v = strings.ReplaceAll(v, "\n", `\n`)
		} else {
			v = flatten.ValueString(it.Value)
		}
		fmt.Fprintf(&buf, "%v=%s\n", it.Key, v)
	}
	return buf.Bytes(), nil
}

// EmitEncryptedFile writes the values and the metadata as sops_* lines.
func (s *Store) EmitEncryptedFile(t sops.Tree) ([]byte, error) {
	if len(t.Branches) != 1 {
		return nil, fmt.Errorf("a dotenv file holds exactly one document, not %d", len(t.Branches))
	}
	md, err := flatten.Flatten(t.Metadata.Branch(), Prefix)
	if err != nil {
		return nil, err
	}
	var b sops.TreeBranch
	for _, it := range t.Branches[0] {
		if k, ok := it.Key.(string); ok && strings.HasPrefix(k, Prefix) {
			return nil, fmt.Errorf("key %q uses the prefix %q reserved for sops metadata", k, Prefix)
		}
		b = append(b, it)
	}
	return s.EmitPlainFile(sops.TreeBranches{append(b, md...)})
}

// EmitValue writes a string value.
func (s *Store) EmitValue(v any) ([]byte, error) {
	if str, ok := v.(string); ok {
		return []byte(str), nil
	}
	return nil, fmt.Errorf("the dotenv store only writes strings, not %T", v)
}
