package sops

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lacre/lacre/keys"
)

// MetadataKey is the top-level key that holds the metadata.
const MetadataKey = "sops"

// ErrMetadataNotFound is returned when a file has no `sops` metadata section.
var ErrMetadataNotFound = errors.New("sops metadata not found")

// alwaysFields lists, per stanza type, the identifying fields written even
// when empty (SOPS's struct fields without omitempty).
var alwaysFields = map[string][]string{
	keys.TypeAge:     {"recipient"},
	keys.TypePGP:     {"fp"},
	keys.TypeKMS:     {"arn", "aws_profile"},
	keys.TypeGCPKMS:  {"resource_id"},
	keys.TypeAzureKV: {"vault_url", "name", "version"},
	keys.TypeVault:   {"vault_address", "engine_path", "key_name"},
	keys.TypeHCKMS:   {"key_id"},
}

// groupTypes is the order stanza types are written within a group (sorted).
var groupTypes = slices.Sorted(slices.Values(keys.Types))

func stanzaToBranch(s *keys.Stanza) TreeBranch {
	vals := map[string]any{}
	for k, v := range s.Fields {
		if v != "" {
			vals[k] = v
		}
	}
	for _, k := range alwaysFields[s.Type] {
		vals[k] = s.Field(k)
	}
	if s.Type != keys.TypeAge {
		vals["created_at"] = s.CreatedAt
	}
	if len(s.Context) > 0 {
		var ctx TreeBranch
		for _, k := range slices.Sorted(maps.Keys(s.Context)) {
			ctx = append(ctx, TreeItem{Key: k, Value: s.Context[k]})
		}
		vals["context"] = ctx
	}
	vals["enc"] = s.Enc
	var b TreeBranch
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		b = append(b, TreeItem{Key: k, Value: vals[k]})
	}
	return b
}

// groupToItems returns the per-type lists of a group. With always set, age
// and hc_vault lists are written even when empty, as SOPS does inside
// key_groups.
func groupToItems(g keys.Group, always bool) map[string]any {
	out := map[string]any{}
	for _, t := range groupTypes {
		var list []any
		for _, s := range g {
			if s.Type == t {
				list = append(list, stanzaToBranch(s))
			}
		}
		if len(list) > 0 {
			out[t] = list
		} else if always && (t == keys.TypeAge || t == keys.TypeVault) {
			out[t] = []any{}
		}
	}
	// Unknown stanza types are kept.
	for _, s := range g {
		if !slices.Contains(keys.Types, s.Type) {
			l, _ := out[s.Type].([]any)
			out[s.Type] = append(l, stanzaToBranch(s))
		}
	}
	return out
}

func sortedBranch(m map[string]any) TreeBranch {
	var b TreeBranch
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = append(b, TreeItem{Key: k, Value: m[k]})
	}
	return b
}

// Branch returns the metadata as a branch, the way SOPS 3.13 writes it: keys
// sorted at every level, empty fields omitted.
func (m *Metadata) Branch() TreeBranch {
	top := map[string]any{}
	if len(m.KeyGroups) == 1 {
		maps.Copy(top, groupToItems(m.KeyGroups[0], false))
	} else if len(m.KeyGroups) > 1 {
		var groups []any
		for _, g := range m.KeyGroups {
			groups = append(groups, sortedBranch(groupToItems(g, true)))
		}
		top["key_groups"] = groups
	}
	if m.ShamirThreshold != 0 {
		top["shamir_threshold"] = m.ShamirThreshold
	}
	top["lastmodified"] = m.LastModified.Format(time.RFC3339)
	top["mac"] = m.MAC
	top["version"] = m.Version
	sel := m.Selection
	for _, r := range sel.Fields() {
		if *r.Value != "" {
			top[r.Name] = *r.Value
		}
	}
	if m.MACOnlyEncrypted {
		top["mac_only_encrypted"] = true
	}
	for _, it := range m.Unknown {
		if k, ok := it.Key.(string); ok {
			if _, dup := top[k]; !dup {
				top[k] = it.Value
			}
		}
	}
	return sortedBranch(top)
}

// A MetadataError reports malformed metadata. It names the field, never a
// value that could be secret.
type MetadataError struct {
	Field string
	Err   error
}

func (e *MetadataError) Error() string {
	return fmt.Sprintf("invalid sops metadata: %s: %v", e.Field, e.Err)
}

func (e *MetadataError) Unwrap() error { return e.Err }

// scalarString converts a weakly typed scalar (flattened stores write
// everything as strings) to a string.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case int:
		return strconv.Itoa(v), true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case time.Time:
		return v.Format(time.RFC3339), true
	}
	return "", false
}

func listOf(v any) ([]any, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case []any:
		return v, true
	case TreeBranch:
		// A flattened store may turn an empty list into an empty map.
		if len(v) == 0 {
			return nil, true
		}
	}
	return nil, false
}

func stanzaFromBranch(typ string, v any) (*keys.Stanza, error) {
	b, ok := v.(TreeBranch)
	if !ok {
		return nil, errors.New("master key entry is not a mapping")
	}
	s := &keys.Stanza{Type: typ, Fields: map[string]string{}}
	for _, it := range b {
		k, ok := it.Key.(string)
		if !ok {
			continue
		}
		switch k {
		case "enc":
			s.Enc, _ = scalarString(it.Value)
		case "created_at":
			s.CreatedAt, _ = scalarString(it.Value)
		case "context":
			cb, ok := it.Value.(TreeBranch)
			if !ok && it.Value != nil {
				return nil, errors.New("context is not a mapping")
			}
			for _, ci := range cb {
				ck, _ := ci.Key.(string)
				cv, ok := scalarString(ci.Value)
				if ck == "" || !ok {
					return nil, errors.New("context entries must be strings")
				}
				if s.Context == nil {
					s.Context = map[string]string{}
				}
				s.Context[ck] = cv
			}
		default:
			sv, ok := scalarString(it.Value)
			if !ok {
				return nil, fmt.Errorf("field %q is not a scalar", k)
			}
			s.Fields[k] = sv
		}
	}
	if s.Enc == "" {
		return nil, errors.New("master key entry has no enc field")
	}
	if typ != keys.TypeAge && slices.Contains(keys.Types, typ) {
		if _, err := time.Parse(time.RFC3339, s.CreatedAt); err != nil {
			return nil, errors.New("created_at is not an RFC 3339 time")
		}
	}
	return s, nil
}

func groupFromItems(b TreeBranch) (keys.Group, error) {
	var g keys.Group
	byType := map[string][]any{}
	for _, it := range b {
		k, ok := it.Key.(string)
		if !ok || !isKeyType(k) {
			continue
		}
		l, ok := listOf(it.Value)
		if !ok {
			return nil, &MetadataError{Field: k, Err: errors.New("not a list")}
		}
		byType[k] = l
	}
	for _, t := range keys.Types {
		for i, e := range byType[t] {
			s, err := stanzaFromBranch(t, e)
			if err != nil {
				return nil, &MetadataError{Field: fmt.Sprintf("%s[%d]", t, i), Err: err}
			}
			g = append(g, s)
		}
	}
	return g, nil
}

func isKeyType(k string) bool { return slices.Contains(keys.Types, k) }

// metadataParser reads the sops section's keys into m.
type metadataParser struct {
	m          *Metadata
	lastmod    string
	haveGroups bool
}

func metaString(v any, field string) (string, error) {
	s, ok := scalarString(v)
	if !ok {
		return "", &MetadataError{Field: field, Err: errors.New("not a scalar")}
	}
	return s, nil
}

// stringField returns the string field a metadata key is read into, or nil.
func (p *metadataParser) stringField(k string) *string {
	switch k {
	case "lastmodified":
		return &p.lastmod
	case "mac":
		return &p.m.MAC
	case "version":
		return &p.m.Version
	}
	for _, r := range p.m.Selection.Fields() {
		if r.Name == k {
			return r.Value
		}
	}
	return nil
}

// field reads one key of the sops section; unknown keys are kept.
func (p *metadataParser) field(it TreeItem, k string) error {
	if dst := p.stringField(k); dst != nil {
		var err error
		*dst, err = metaString(it.Value, k)
		return err
	}
	switch k {
	case "key_groups":
		return p.keyGroups(it.Value)
	case "shamir_threshold":
		s, err := metaString(it.Value, k)
		if err == nil && s != "" {
			if p.m.ShamirThreshold, err = strconv.Atoi(s); err != nil {
				err = &MetadataError{Field: k, Err: errors.New("not an integer")}
			}
		}
		return err
	case "mac_only_encrypted":
		s, err := metaString(it.Value, k)
		if err == nil && s != "" {
			if p.m.MACOnlyEncrypted, err = strconv.ParseBool(s); err != nil {
				err = &MetadataError{Field: k, Err: errors.New("not a boolean")}
			}
		}
		return err
	}
	if !isKeyType(k) {
		p.m.Unknown = append(p.m.Unknown, it)
	}
	return nil
}

func (p *metadataParser) keyGroups(v any) error {
	l, ok := listOf(v)
	if !ok {
		return &MetadataError{Field: "key_groups", Err: errors.New("not a list")}
	}
	for i, gv := range l {
		gb, ok := gv.(TreeBranch)
		if !ok && gv != nil {
			return &MetadataError{Field: fmt.Sprintf("key_groups[%d]", i), Err: errors.New("not a mapping")}
		}
		g, err := groupFromItems(gb)
		if err != nil {
			return err
		}
		p.m.KeyGroups = append(p.m.KeyGroups, g)
	}
	p.haveGroups = len(l) > 0
	return nil
}

// MetadataFromBranch parses the `sops` section. It accepts keys in any order,
// empty lists written as [] or null, weakly typed scalars (as the flattened
// dotenv and INI stores write them) and unknown keys.
func MetadataFromBranch(b TreeBranch) (Metadata, error) {
	var m Metadata
	p := metadataParser{m: &m}
	for _, it := range b {
		if k, ok := it.Key.(string); ok {
			if err := p.field(it, k); err != nil {
				return m, err
			}
		}
	}
	if !p.haveGroups {
		g, err := groupFromItems(b)
		if err != nil {
			return m, err
		}
		if len(g) > 0 {
			m.KeyGroups = []keys.Group{g}
		}
	}
	if p.lastmod == "" {
		return m, &MetadataError{Field: "lastmodified", Err: errors.New("missing")}
	}
	t, err := time.Parse(time.RFC3339, p.lastmod)
	if err != nil {
		return m, &MetadataError{Field: "lastmodified", Err: errors.New("not an RFC 3339 time")}
	}
	m.LastModified = t
	if err := checkVersion(m.Version); err != nil {
		return m, &MetadataError{Field: "version", Err: err}
	}
	if err := m.Selection.Validate(); err != nil {
		return m, &MetadataError{Field: "encryption rules", Err: err}
	}
	return m, nil
}

// checkVersion accepts what SOPS accepts: a semantic version X.Y.Z with an
// optional pre-release or build suffix.
func checkVersion(v string) error {
	core := v
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		core = core[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return errors.New("not a semantic version (X.Y.Z)")
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 64); err != nil || p == "" {
			return errors.New("not a semantic version (X.Y.Z)")
		}
	}
	return nil
}

// ExtractMetadata removes the `sops` key from every document and parses the
// first document's as the metadata.
func ExtractMetadata(branches TreeBranches) (Tree, error) {
	var meta any
	found := false
	for i, b := range branches {
		for j, it := range b {
			if k, ok := it.Key.(string); ok && k == MetadataKey {
				if i == 0 {
					meta, found = it.Value, true
				}
				branches[i] = append(b[:j:j], b[j+1:]...)
				break
			}
		}
	}
	if !found {
		return Tree{}, ErrMetadataNotFound
	}
	mb, ok := meta.(TreeBranch)
	if !ok {
		return Tree{}, &MetadataError{Field: "sops", Err: errors.New("not a mapping")}
	}
	m, err := MetadataFromBranch(mb)
	if err != nil {
		return Tree{}, err
	}
	return Tree{Branches: branches, Metadata: m}, nil
}
