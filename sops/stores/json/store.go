// Package json is the JSON store, byte-compatible with sops 3.13: key order
// kept, integers that fit int64 as ints, a tab as the default indent.
package json

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/lacre/lacre/sops"
)

// Limits on untrusted input.
const (
	DefaultMaxSize = 64 << 20
	maxDepth       = 1000
)

// ErrTooLarge is returned for input beyond the store's bounds.
var ErrTooLarge = errors.New("json input too large or too deeply nested")

// Store reads and writes JSON.
type Store struct {
	// Indent is the number of spaces; -1 (or DefaultIndent) means a tab,
	// as sops writes by default.
	Indent  int
	MaxSize int
}

// DefaultIndent selects a tab.
const DefaultIndent = -1

// New returns a JSON store; indent -1 means a tab, 0 means no indentation.
func New(indent int) *Store { return &Store{Indent: indent} }

var _ sops.Store = (*Store)(nil)

func value(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, ErrTooLarge
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return branch(dec, depth+1)
		case '[':
			l := []any{}
			for dec.More() {
				v, err := value(dec, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return l, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return number(t)
	}
	return tok, nil
}

// number keeps integers that fit int64 as ints, like sops 3.13.2+.
func number(n json.Number) (any, error) {
	if i, err := n.Int64(); err == nil && i >= math.MinInt && i <= math.MaxInt {
		return int(i), nil
	}
	return n.Float64()
}

func branch(dec *json.Decoder, depth int) (sops.TreeBranch, error) {
	b := sops.TreeBranch{}
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := kt.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		if seen[k] {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		v, err := value(dec, depth)
		if err != nil {
			return nil, err
		}
		b = append(b, sops.TreeItem{Key: k, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return b, nil
}

func (s *Store) load(in []byte) (sops.TreeBranch, error) {
	max := s.MaxSize
	if max == 0 {
		max = DefaultMaxSize
	}
	if len(in) > max {
		return nil, ErrTooLarge
	}
	if len(bytes.TrimSpace(in)) == 0 {
		return nil, sops.ErrNoDocuments
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("invalid JSON: only files with a top-level object are supported (wrap arrays in an object, e.g. {\"data\": [...]})")
	}
	b, err := branch(dec, 1)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level object")
	}
	return b, nil
}

// LoadPlainFile parses a JSON object.
func (s *Store) LoadPlainFile(in []byte) (sops.TreeBranches, error) {
	return sops.LoadPlainDocument(in, s.load, "")
}

// LoadEncryptedFile parses an encrypted JSON file.
func (s *Store) LoadEncryptedFile(in []byte) (sops.Tree, error) {
	b, err := s.load(in)
	if err != nil {
		return sops.Tree{}, err
	}
	return sops.ExtractMetadata(sops.TreeBranches{b})
}

func encode(buf *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case sops.TreeBranch:
		buf.WriteByte('{')
		first := true
		for _, it := range v {
			if _, ok := it.Key.(sops.Comment); ok {
				continue
			}
			k, ok := it.Key.(string)
			if !ok {
				return fmt.Errorf("JSON keys must be strings, not %T", it.Key)
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			kb, _ := json.Marshal(k)
			buf.Write(kb)
			buf.WriteString(": ")
			if err := encode(buf, it.Value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		first := true
		for _, x := range v {
			if _, ok := x.(sops.Comment); ok {
				continue
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			if err := encode(buf, x); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("cannot write a %T as JSON", v)
		}
		buf.Write(b)
	}
	return nil
}

func (s *Store) reindent(in []byte) ([]byte, error) {
	indent := "\t"
	if s.Indent >= 0 {
		indent = strings.Repeat(" ", s.Indent)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, in, "", indent); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// EmitPlainFile writes the first document as JSON.
func (s *Store) EmitPlainFile(branches sops.TreeBranches) ([]byte, error) {
	if len(branches) != 1 {
		return nil, fmt.Errorf("a JSON file holds exactly one document, not %d", len(branches))
	}
	var buf bytes.Buffer
	if err := encode(&buf, branches[0]); err != nil {
		return nil, err
	}
	out, err := s.reindent(buf.Bytes())
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// EmitEncryptedFile writes the tree with its metadata under "sops".
func (s *Store) EmitEncryptedFile(t sops.Tree) ([]byte, error) {
	if len(t.Branches) != 1 {
		return nil, fmt.Errorf("a JSON file holds exactly one document, not %d", len(t.Branches))
	}
	b := append(append(sops.TreeBranch{}, t.Branches[0]...), sops.TreeItem{Key: sops.MetadataKey, Value: t.Metadata.Branch()})
	return s.EmitPlainFile(sops.TreeBranches{b})
}

// EmitValue writes one value: a string as is, anything else as JSON.
func (s *Store) EmitValue(v any) ([]byte, error) {
	if str, ok := v.(string); ok {
		return []byte(str), nil
	}
	var buf bytes.Buffer
	if err := encode(&buf, v); err != nil {
		return nil, err
	}
	return s.reindent(buf.Bytes())
}
