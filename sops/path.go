package sops

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidPath is returned for a malformed tree path such as `["a"][0`.
var ErrInvalidPath = errors.New(`invalid tree path: use the form ["key"][0]["other"]`)

// ErrKeyNotFound is returned when a path does not exist in the tree.
var ErrKeyNotFound = errors.New("key not found")

// ParsePath parses a path like `["a"][0]["b"]` into its components: strings
// for mapping keys and ints for list indices.
func ParsePath(s string) ([]any, error) {
	var out []any
	rest := strings.TrimSpace(s)
	for rest != "" {
		if rest[0] != '[' {
			return nil, ErrInvalidPath
		}
		rest = rest[1:]
		if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
			q := rest[0]
			end := -1
			for i := 1; i < len(rest); i++ {
				if rest[i] == '\\' {
					i++
					continue
				}
				if rest[i] == q {
					end = i
					break
				}
			}
			if end < 0 {
				return nil, ErrInvalidPath
			}
			key := rest[1:end]
			if q == '"' {
				unq, err := strconv.Unquote(rest[:end+1])
				if err == nil {
					key = unq
				}
			}
			rest = rest[end+1:]
			if rest == "" || rest[0] != ']' {
				return nil, ErrInvalidPath
			}
			out = append(out, key)
			rest = rest[1:]
			continue
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, ErrInvalidPath
		}
		n, err := strconv.Atoi(strings.TrimSpace(rest[:end]))
		if err != nil || n < 0 {
			return nil, ErrInvalidPath
		}
		out = append(out, n)
		rest = rest[end+1:]
	}
	if len(out) == 0 {
		return nil, ErrInvalidPath
	}
	return out, nil
}

// FormatPath is the inverse of ParsePath.
func FormatPath(path []any) string {
	var sb strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&sb, "[%d]", p)
		default:
			fmt.Fprintf(&sb, "[%q]", p)
		}
	}
	return sb.String()
}

// Get returns the value at path in branch. Comments are skipped when
// counting list indices.
func (b TreeBranch) Get(path []any) (any, error) {
	var cur any = b
	for i, p := range path {
		switch node := cur.(type) {
		case TreeBranch:
			k, ok := p.(string)
			if !ok {
				return nil, fmt.Errorf("%s: %w", FormatPath(path[:i+1]), ErrKeyNotFound)
			}
			found := false
			for _, it := range node {
				if ik, ok := it.Key.(string); ok && ik == k {
					cur, found = it.Value, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("%s: %w", FormatPath(path[:i+1]), ErrKeyNotFound)
			}
		case []any:
			n, ok := p.(int)
			if !ok || n >= len(node) {
				return nil, fmt.Errorf("%s: %w", FormatPath(path[:i+1]), ErrKeyNotFound)
			}
			cur = node[n]
		default:
			return nil, fmt.Errorf("%s: %w", FormatPath(path[:i+1]), ErrKeyNotFound)
		}
	}
	return cur, nil
}

// Set sets the value at path, creating mappings (and extending lists) as
// needed. It returns the new branch.
func (b TreeBranch) Set(path []any, value any) (TreeBranch, error) {
	if len(path) == 0 {
		return nil, ErrInvalidPath
	}
	nb, err := setIn(b, path, value)
	if err != nil {
		return nil, err
	}
	out, ok := nb.(TreeBranch)
	if !ok {
		return nil, errors.New("the top level must stay a mapping")
	}
	return out, nil
}

func setIn(node any, path []any, value any) (any, error) {
	if len(path) == 0 {
		return value, nil
	}
	switch p := path[0].(type) {
	case string:
		br, ok := node.(TreeBranch)
		if !ok {
			if node != nil {
				return nil, fmt.Errorf("cannot set key %q: the parent is not a mapping", p)
			}
			br = TreeBranch{}
		}
		for i, it := range br {
			if k, ok := it.Key.(string); ok && k == p {
				v, err := setIn(it.Value, path[1:], value)
				if err != nil {
					return nil, err
				}
				br[i].Value = v
				return br, nil
			}
		}
		v, err := setIn(nil, path[1:], value)
		if err != nil {
			return nil, err
		}
		return append(br, TreeItem{Key: p, Value: v}), nil
	case int:
		l, ok := node.([]any)
		if !ok {
			if node != nil {
				return nil, fmt.Errorf("cannot set index %d: the parent is not a list", p)
			}
			l = nil
		}
		if p > len(l) {
			return nil, fmt.Errorf("cannot set index %d: the list has %d elements", p, len(l))
		}
		if p == len(l) {
			l = append(l, nil)
		}
		v, err := setIn(l[p], path[1:], value)
		if err != nil {
			return nil, err
		}
		l[p] = v
		return l, nil
	}
	return nil, ErrInvalidPath
}

// Unset removes the value at path.
func (b TreeBranch) Unset(path []any) (TreeBranch, error) {
	if len(path) == 0 {
		return nil, ErrInvalidPath
	}
	nb, err := unsetIn(b, path, path)
	if err != nil {
		return nil, err
	}
	return nb.(TreeBranch), nil
}

func unsetIn(node any, path, full []any) (any, error) {
	notFound := fmt.Errorf("%s: %w", FormatPath(full), ErrKeyNotFound)
	switch p := path[0].(type) {
	case string:
		br, ok := node.(TreeBranch)
		if !ok {
			return nil, notFound
		}
		for i, it := range br {
			if k, ok := it.Key.(string); ok && k == p {
				if len(path) == 1 {
					return append(br[:i:i], br[i+1:]...), nil
				}
				v, err := unsetIn(it.Value, path[1:], full)
				if err != nil {
					return nil, err
				}
				br[i].Value = v
				return br, nil
			}
		}
		return nil, notFound
	case int:
		l, ok := node.([]any)
		if !ok || p >= len(l) {
			return nil, notFound
		}
		if len(path) == 1 {
			return append(l[:p:p], l[p+1:]...), nil
		}
		v, err := unsetIn(l[p], path[1:], full)
		if err != nil {
			return nil, err
		}
		l[p] = v
		return l, nil
	}
	return nil, ErrInvalidPath
}
