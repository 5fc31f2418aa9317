// Package flatten turns nested trees into flat key/value lists and back, the
// way sops stores its metadata in dotenv and INI files:
// nested map keys are joined with "__map_", list positions with "__list_N".
package flatten

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lacre/lacre/sops"
)

const (
	mapSep  = "__map_"
	listSep = "__list_"
)

// Flatten flattens a branch; every key gets prefix.
func Flatten(b sops.TreeBranch, prefix string) (sops.TreeBranch, error) {
	seen := map[string]bool{}
	return flattenMap(b, prefix, nil, seen)
}

func flattenValue(v any, key string, dst sops.TreeBranch, seen map[string]bool) (sops.TreeBranch, error) {
	switch v := v.(type) {
	case sops.TreeBranch:
		return flattenMap(v, key+mapSep, dst, seen)
	case []any:
		i := 0
		for _, x := range v {
			if _, ok := x.(sops.Comment); ok {
				continue
			}
			var err error
			if dst, err = flattenValue(x, key+listSep+strconv.Itoa(i), dst, seen); err != nil {
				return nil, err
			}
			i++
		}
		return dst, nil
	}
	if seen[key] {
		return nil, fmt.Errorf("key collision %q while flattening", key)
	}
	seen[key] = true
	return append(dst, sops.TreeItem{Key: key, Value: v}), nil
}

func flattenMap(b sops.TreeBranch, prefix string, dst sops.TreeBranch, seen map[string]bool) (sops.TreeBranch, error) {
	for _, it := range b {
		if _, ok := it.Key.(sops.Comment); ok {
			continue
		}
		k, ok := it.Key.(string)
		if !ok {
			return nil, fmt.Errorf("non-string key %v while flattening", it.Key)
		}
		var err error
		if dst, err = flattenValue(it.Value, prefix+k, dst, seen); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

type token struct {
	key   string
	index int
	list  bool
}

func tokenize(path string) []token {
	var out []token
	state, start, i := 0, 0, 0 // 0 normal, 1 map, 2 list
	finish := func() {
		switch state {
		case 0:
			out = append(out, token{key: path[start:i]})
		case 1:
			out = append(out, token{key: path[start+len(mapSep) : i]})
		case 2:
			n, _ := strconv.Atoi(path[start+len(listSep) : i])
			out = append(out, token{index: n, list: true})
		}
		start = i
	}
	for i < len(path) {
		switch {
		case strings.HasPrefix(path[i:], mapSep):
			finish()
			state = 1
			i += len(mapSep)
		case strings.HasPrefix(path[i:], listSep):
			finish()
			state = 2
			i += len(listSep)
		default:
			i++
		}
	}
	finish()
	return out
}

type node struct {
	value   *any
	subkeys map[string]*node
	indices map[int]*node
}

// maxListIndex bounds list positions in flattened keys.
const maxListIndex = 100_000

// Unflatten rebuilds the nested branch (maps sorted by key, as sops does).
func Unflatten(b sops.TreeBranch) (sops.TreeBranch, error) {
	root := &node{}
	for _, it := range b {
		if _, ok := it.Key.(sops.Comment); ok {
			continue
		}
		k, ok := it.Key.(string)
		if !ok {
			return nil, fmt.Errorf("non-string key %v while unflattening", it.Key)
		}
		n := root
		for _, t := range tokenize(k) {
			if t.list {
				if t.index < 0 || t.index > maxListIndex {
					return nil, fmt.Errorf("list index out of range in %q", k)
				}
				if n.indices == nil {
					n.indices = map[int]*node{}
				}
				if n.indices[t.index] == nil {
					n.indices[t.index] = &node{}
				}
				n = n.indices[t.index]
			} else {
				if n.subkeys == nil {
					n.subkeys = map[string]*node{}
				}
				if n.subkeys[t.key] == nil {
					n.subkeys[t.key] = &node{}
				}
				n = n.subkeys[t.key]
			}
		}
		if n.value != nil {
			return nil, fmt.Errorf("duplicate value for %q", k)
		}
		v := it.Value
		n.value = &v
	}
	out, err := convert(root, 0)
	if err != nil {
		return nil, err
	}
	tb, ok := out.(sops.TreeBranch)
	if !ok {
		return nil, errors.New("flattened data has no root mapping")
	}
	return tb, nil
}

func convert(n *node, depth int) (any, error) {
	if depth > 100 {
		return nil, errors.New("flattened keys nest too deeply")
	}
	kinds := 0
	for _, b := range []bool{n.value != nil, len(n.subkeys) > 0, len(n.indices) > 0} {
		if b {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return nil, errors.New("type mismatch while unflattening")
	case kinds == 0:
		return sops.TreeBranch{}, nil
	case n.value != nil:
		return *n.value, nil
	case len(n.subkeys) > 0:
		ks := make([]string, 0, len(n.subkeys))
		for k := range n.subkeys {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		out := make(sops.TreeBranch, len(ks))
		for i, k := range ks {
			v, err := convert(n.subkeys[k], depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = sops.TreeItem{Key: k, Value: v}
		}
		return out, nil
	}
	minI, maxI := math.MaxInt, math.MinInt
	for k := range n.indices {
		minI, maxI = min(minI, k), max(maxI, k)
	}
	if minI != 0 || maxI+1 != len(n.indices) {
		return nil, errors.New("incomplete list while unflattening")
	}
	out := make([]any, maxI+1)
	for k, c := range n.indices {
		v, err := convert(c, depth+1)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// ValueString writes a scalar the way sops's flat stores do.
func ValueString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		s := strconv.FormatFloat(v, 'G', -1, 64)
		if !strings.ContainsAny(s, ".E") {
			s = strconv.FormatFloat(v, 'f', 1, 64)
		}
		return s
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.Format(time.RFC3339)
	case nil:
		return "<nil>"
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

// IsComplex reports whether v is a mapping or a list.
func IsComplex(v any) bool {
	switch v.(type) {
	case sops.TreeBranch, []any:
		return true
	}
	return false
}
