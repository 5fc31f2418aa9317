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

// DefaultUnencryptedSuffix is the selection rule used when none is given.
const DefaultUnencryptedSuffix = "_unencrypted"

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
	for k, v := range map[string]string{
		"unencrypted_suffix":        m.UnencryptedSuffix,
		"encrypted_suffix":          m.EncryptedSuffix,
		"unencrypted_regex":         m.UnencryptedRegex,
		"encrypted_regex":           m.EncryptedRegex,
		"unencrypted_comment_regex": m.UnencryptedCommentRegex,
		"encrypted_comment_regex":   m.EncryptedCommentRegex,
	} {
		if v != "" {
			top[k] = v
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

var knownMetadataKeys = []string{
	"key_groups", "shamir_threshold", "lastmodified", "mac", "version",
	"unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex",
	"unencrypted_comment_regex", "encrypted_comment_regex", "mac_only_encrypted",
}

// MetadataFromBranch parses the `sops` section. It accepts keys in any order,
// empty lists written as [] or null, weakly typed scalars (as the flattened
// dotenv and INI stores write them) and unknown keys.
func MetadataFromBranch(b TreeBranch) (Metadata, error) {
	var m Metadata
	var lastmod string
	var haveGroups bool
	str := func(v any, field string) (string, error) {
		s, ok := scalarString(v)
		if !ok {
			return "", &MetadataError{Field: field, Err: errors.New("not a scalar")}
		}
		return s, nil
	}
	for _, it := range b {
		k, ok := it.Key.(string)
		if !ok {
			continue
		}
		var err error
		switch k {
		case "key_groups":
			l, ok := listOf(it.Value)
			if !ok {
				return m, &MetadataError{Field: k, Err: errors.New("not a list")}
			}
			for i, gv := range l {
				gb, ok := gv.(TreeBranch)
				if !ok && gv != nil {
					return m, &MetadataError{Field: fmt.Sprintf("key_groups[%d]", i), Err: errors.New("not a mapping")}
				}
				g, err := groupFromItems(gb)
				if err != nil {
					return m, err
				}
				m.KeyGroups = append(m.KeyGroups, g)
			}
			haveGroups = len(l) > 0
		case "shamir_threshold":
			var s string
			if s, err = str(it.Value, k); err == nil && s != "" {
				m.ShamirThreshold, err = strconv.Atoi(s)
				if err != nil {
					err = &MetadataError{Field: k, Err: errors.New("not an integer")}
				}
			}
		case "lastmodified":
			lastmod, err = str(it.Value, k)
		case "mac":
			m.MAC, err = str(it.Value, k)
		case "version":
			m.Version, err = str(it.Value, k)
		case "unencrypted_suffix":
			m.UnencryptedSuffix, err = str(it.Value, k)
		case "encrypted_suffix":
			m.EncryptedSuffix, err = str(it.Value, k)
		case "unencrypted_regex":
			m.UnencryptedRegex, err = str(it.Value, k)
		case "encrypted_regex":
			m.EncryptedRegex, err = str(it.Value, k)
		case "unencrypted_comment_regex":
			m.UnencryptedCommentRegex, err = str(it.Value, k)
		case "encrypted_comment_regex":
			m.EncryptedCommentRegex, err = str(it.Value, k)
		case "mac_only_encrypted":
			var s string
			if s, err = str(it.Value, k); err == nil && s != "" {
				m.MACOnlyEncrypted, err = strconv.ParseBool(s)
				if err != nil {
					err = &MetadataError{Field: k, Err: errors.New("not a boolean")}
				}
			}
		default:
			if !isKeyType(k) {
				m.Unknown = append(m.Unknown, it)
			}
		}
		if err != nil {
			return m, err
		}
	}
	if !haveGroups {
		g, err := groupFromItems(b)
		if err != nil {
			return m, err
		}
		if len(g) > 0 {
			m.KeyGroups = []keys.Group{g}
		}
	}
	if lastmod == "" {
		return m, &MetadataError{Field: "lastmodified", Err: errors.New("missing")}
	}
	t, err := time.Parse(time.RFC3339, lastmod)
	if err != nil {
		return m, &MetadataError{Field: "lastmodified", Err: errors.New("not an RFC 3339 time")}
	}
	m.LastModified = t
	if err := checkVersion(m.Version); err != nil {
		return m, &MetadataError{Field: "version", Err: err}
	}
	n := 0
	for _, r := range []string{m.UnencryptedSuffix, m.EncryptedSuffix, m.UnencryptedRegex, m.EncryptedRegex, m.UnencryptedCommentRegex, m.EncryptedCommentRegex} {
		if r != "" {
			n++
		}
	}
	if n > 1 {
		return m, &MetadataError{Field: "encryption rules", Err: errors.New("more than one of the suffix and regex rules is set")}
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
