// Package ini is the INI store, byte-compatible with sops 3.13: each
// section is a mapping, keys before the first section belong to DEFAULT,
// and the metadata goes in a [sops] section.
package ini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/ini.v1"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/flatten"
)

// MaxSize bounds the input.
const MaxSize = 64 << 20

// Store reads and writes INI files.
type Store struct{}

// New returns an INI store.
func New() *Store { return &Store{} }

var _ sops.Store = (*Store)(nil)

func stripComment(c string) string {
	switch {
	case strings.HasPrefix(c, ";"):
		return strings.TrimLeft(c, "; ")
	case strings.HasPrefix(c, "#"):
		return strings.TrimLeft(c, "# ")
	}
	return c
}

func (s *Store) load(in []byte) (sops.TreeBranch, error) {
	if len(in) > MaxSize {
		return nil, errors.New("ini input too large")
	}
	f, err := ini.LoadSources(ini.LoadOptions{AllowNonUniqueSections: true}, in)
	if err != nil {
		return nil, fmt.Errorf("invalid INI: %s", iniError(err, in))
	}
	var b sops.TreeBranch
	for _, sec := range f.Sections() {
		var items sops.TreeBranch
		if sec.Comment != "" {
			items = append(items, sops.TreeItem{Key: sops.Comment{Value: stripComment(sec.Comment)}})
		}
		for _, k := range sec.Keys() {
			items = append(items, sops.TreeItem{Key: k.Name(), Value: k.Value()})
			if k.Comment != "" {
				items = append(items, sops.TreeItem{Key: sops.Comment{Value: stripComment(k.Comment)}})
			}
		}
		b = append(b, sops.TreeItem{Key: sec.Name(), Value: items})
	}
	return b, nil
}

// LoadPlainFile parses an INI file.
func (s *Store) LoadPlainFile(in []byte) (sops.TreeBranches, error) {
	return sops.LoadPlainDocument(in, s.load, "")
}

// LoadEncryptedFile parses an encrypted INI file.
func (s *Store) LoadEncryptedFile(in []byte) (sops.Tree, error) {
	b, err := s.load(in)
	if err != nil {
		return sops.Tree{}, err
	}
	var meta sops.TreeBranch
	found := false
	var rest sops.TreeBranch
	for _, it := range b {
		if it.Key == sops.MetadataKey {
			if found {
				return sops.Tree{}, &sops.MetadataError{Field: "sops", Err: errors.New("duplicate [sops] section")}
			}
			found = true
			meta, _ = it.Value.(sops.TreeBranch)
			continue
		}
		rest = append(rest, it)
	}
	if !found {
		return sops.Tree{}, sops.ErrMetadataNotFound
	}
	for i, it := range meta {
		if v, ok := it.Value.(string); ok {
			meta[i].Value = strings.ReplaceAll(v, `\n`, "\n")
		}
	}
	mb, err := flatten.Unflatten(meta)
	if err != nil {
		return sops.Tree{}, &sops.MetadataError{Field: "sops", Err: err}
	}
	m, err := sops.MetadataFromBranch(mb)
	if err != nil {
		return sops.Tree{}, err
	}
	return sops.Tree{Branches: sops.TreeBranches{rest}, Metadata: m}, nil
}

// EmitPlainFile writes sections.
func (s *Store) EmitPlainFile(branches sops.TreeBranches) (out []byte, err error) {
	// gopkg.in/ini.v1 panics on some inputs it accepted when reading.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, errors.New("cannot write this INI content")
		}
	}()
	f := ini.Empty(ini.LoadOptions{AllowNonUniqueSections: true})
	f.DeleteSection(ini.DefaultSection)
	for _, b := range branches {
		for _, it := range b {
			if _, ok := it.Key.(sops.Comment); ok {
				continue
			}
			name, ok := it.Key.(string)
			if !ok {
				return nil, fmt.Errorf("INI section names must be strings, not %T", it.Key)
			}
			sec, err := f.NewSection(name)
			if err != nil {
				return nil, fmt.Errorf("INI section %q: %v", name, err)
			}
			items, ok := it.Value.(sops.TreeBranch)
			if !ok {
				return nil, fmt.Errorf("INI section %q must be a mapping of keys to values", name)
			}
			first := 0
			if len(items) > 0 {
				if c, ok := items[0].Key.(sops.Comment); ok {
					sec.Comment = c.Value
					first = 1
				}
			}
			var last *ini.Key
			for _, kv := range items[first:] {
				if c, ok := kv.Key.(sops.Comment); ok {
					if last != nil {
						last.Comment = c.Value
					}
					continue
				}
				if flatten.IsComplex(kv.Value) {
					return nil, fmt.Errorf("cannot write a nested value to an INI file (key %v)", kv.Key)
				}
				if last, err = sec.NewKey(fmt.Sprint(kv.Key), flatten.ValueString(kv.Value)); err != nil {
					return nil, fmt.Errorf("INI key %v: %v", kv.Key, err)
				}
			}
		}
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		return nil, err
	}
	// gopkg.in/ini.v1 can write keys it cannot read back: refuse to write a
	// file that would not load again rather than lose it.
	if _, err := ini.LoadSources(ini.LoadOptions{AllowNonUniqueSections: true}, buf.Bytes()); err != nil {
		return nil, errors.New("cannot write this INI content: a key or value would not read back")
	}
	return buf.Bytes(), nil
}

// EmitEncryptedFile writes the sections and a [sops] section.
func (s *Store) EmitEncryptedFile(t sops.Tree) ([]byte, error) {
	if len(t.Branches) != 1 {
		return nil, fmt.Errorf("an INI file holds exactly one document, not %d", len(t.Branches))
	}
	md, err := flatten.Flatten(t.Metadata.Branch(), "")
	if err != nil {
		return nil, err
	}
	for i, it := range md {
		if v, ok := it.Value.(string); ok {
			md[i].Value = strings.ReplaceAll(v, "\n", `\n`)
		}
	}
	for _, it := range t.Branches[0] {
		if it.Key == sops.MetadataKey {
			return nil, errors.New("section [sops] is reserved for sops metadata")
		}
	}
	b := append(append(sops.TreeBranch{}, t.Branches[0]...), sops.TreeItem{Key: sops.MetadataKey, Value: md})
	return s.EmitPlainFile(sops.TreeBranches{b})
}

// EmitValue writes one value: a string as is, anything else as JSON.
func (s *Store) EmitValue(v any) ([]byte, error) {
	if str, ok := v.(string); ok {
		return []byte(str), nil
	}
	if b, ok := v.(sops.TreeBranch); ok {
		return s.EmitPlainFile(sops.TreeBranches{b})
	}
	return json.Marshal(v)
}

// iniError returns the INI parser's message without the line it quotes
// ("key-value delimiter not found: <line>"), naming the line by number.
func iniError(err error, in []byte) string {
	msg, quoted, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return msg
	}
	quoted = strings.TrimSpace(quoted)
	for i, line := range strings.Split(string(in), "\n") {
		if quoted != "" && strings.TrimSpace(line) == quoted {
			return fmt.Sprintf("line %d: %s", i+1, msg)
		}
	}
	return msg
}
