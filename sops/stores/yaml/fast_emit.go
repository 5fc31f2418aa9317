package yaml

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lacre/lacre/sops"
)

// The emitting half of the fast path (see fast_load.go).

type fastEmitter struct {
	buf    bytes.Buffer
	indent int
}

var reservedWords = map[string]bool{
	"true": true, "True": true, "TRUE": true, "false": true, "False": true, "FALSE": true,
	"null": true, "Null": true, "NULL": true, "~": true,
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"n": true, "N": true, "no": true, "No": true, "NO": true, "off": true, "Off": true, "OFF": true,
}

// wordChars are the bytes plainString writes unquoted.
var wordChars = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_./@+=-:?&%", byte(c)) >= 0
	}
	return t
}()

func isWordChar(c byte) bool { return wordChars[c] }

// encSafe accepts ENC[...] values made of base64 and the format's
// punctuation, which yaml.v3 writes as plain scalars.
func encSafe(s string) bool {
	if !strings.HasPrefix(s, "ENC[AES256_GCM,data:") || !strings.HasSuffix(s, "]") {
		return false
	}
	// A table lookup per byte: base64 mixes every class of character, which
	// defeats a chain of comparisons.
	ok := true
	for i := 0; i < len(s); i++ {
		ok = ok && encChars[s[i]]
	}
	return ok
}

// encChars are the bytes of an ENC[...] value: base64 and the format's
// punctuation.
var encChars = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+/=,:[]_", byte(c)) >= 0
	}
	return t
}()

// plainString returns how a string is written on one line, or ok=false.
// col is the column where it starts.
func plainString(s string, col int) (string, bool) {
	if s == "" {
		return `""`, true
	}
	if len(s) <= 5 && reservedWords[s] {
		return `"` + s + `"`, true
	}
	if strings.HasPrefix(s, "ENC[") {
		return s, encSafe(s)
	}
	c := s[0]
	numeric := c >= '0' && c <= '9'
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '/' || numeric) {
		return "", false
	}
	if strings.HasSuffix(s, ":") || hasColonSpace(s) {
		return "", false
	}
	spaces := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if i == len(s)-1 || s[i+1] == ' ' {
				return "", false
			}
			spaces = true
			continue
		}
		if !isWordChar(s[i]) {
			return "", false
		}
	}
	if spaces && col+len(s) > 80 {
		return "", false // yaml.v3 folds long plain scalars at spaces
	}
	if numeric {
		// Quoted when it would read back as a number, a time, ...
		v, ok := resolvePlain(s)
		if !ok {
			return "", false
		}
		if _, isStr := v.(string); !isStr || base60Float.MatchString(s) {
			if spaces {
				return "", false
			}
			return `"` + s + `"`, true
		}
	}
	return s, true
}

func (e *fastEmitter) pad(n int) {
	for i := 0; i < n; i++ {
		e.buf.WriteByte(' ')
	}
}

// scalar writes a scalar value after "key:" or "- " (a leading space is
// written here); col is where the value starts, childIndent where a
// literal block's lines go.
func (e *fastEmitter) scalar(v any, col, childIndent int) bool {
	switch v := v.(type) {
	case string:
		if strings.Contains(v, "\n") {
			return e.literal(v, childIndent)
		}
		s, ok := plainString(v, col)
		if !ok {
			return false
		}
		e.buf.WriteByte(' ')
		e.buf.WriteString(s)
	case int:
		e.buf.WriteByte(' ')
		e.buf.WriteString(strconv.Itoa(v))
	case bool:
		e.buf.WriteByte(' ')
		e.buf.WriteString(strconv.FormatBool(v))
	case nil:
		e.buf.WriteString(" null")
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return false
		}
		e.buf.WriteByte(' ')
		e.buf.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	case time.Time:
		e.buf.WriteByte(' ')
		e.buf.WriteString(v.Format(time.RFC3339Nano))
	case sops.TreeBranch:
		if len(v) != 0 {
			return false
		}
		e.buf.WriteString(" {}")
	case []any:
		if len(v) != 0 {
			return false
		}
		e.buf.WriteString(" []")
	default:
		return false
	}
	e.buf.WriteByte('\n')
	return true
}

func (e *fastEmitter) literal(s string, indent int) bool {
	body := s
	chomp := "-"
	if strings.HasSuffix(s, "\n") {
		body, chomp = s[:len(s)-1], ""
		if strings.HasSuffix(body, "\n") {
			return false
		}
	}
	if body == "" || body[0] == ' ' || body[0] == '\n' {
		return false
	}
	lines := strings.Split(body, "\n")
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; c < 0x20 || c == 0x7f {
				return false
			}
		}
	}
	e.buf.WriteString(" |" + chomp + "\n")
	for _, l := range lines {
		if l != "" {
			e.pad(indent)
			e.buf.WriteString(l)
		}
		e.buf.WriteByte('\n')
	}
	return true
}

func (e *fastEmitter) key(k any, col int) bool {
	s, ok := k.(string)
	if !ok || s == "" || len(s) > 128 {
		return false
	}
	ks, ok := plainString(s, col)
	if !ok || strings.HasPrefix(s, "ENC[") {
		return false
	}
	e.buf.WriteString(ks)
	e.buf.WriteByte(':')
	return true
}

// mapping writes a block mapping whose keys start at column ind and whose
// nested values start at column child; the first key is written at the
// current position (after "- " in a sequence, where yaml.v3 indents nested
// values from the dash, not from the key).
func (e *fastEmitter) mapping(b sops.TreeBranch, ind, child int, first bool) bool {
	for i, it := range b {
		if _, ok := it.Key.(sops.Comment); ok {
			return false
		}
		if i > 0 || !first {
			e.pad(ind)
		}
		if !e.key(it.Key, ind) {
			return false
		}
		switch v := it.Value.(type) {
		case sops.TreeBranch:
			if len(v) == 0 {
				e.buf.WriteString(" {}\n")
				continue
			}
			e.buf.WriteByte('\n')
			if !e.mapping(v, child, child+e.indent, false) {
				return false
			}
		case []any:
			if len(v) == 0 {
				e.buf.WriteString(" []\n")
				continue
			}
			e.buf.WriteByte('\n')
			if !e.sequence(v, child) {
				return false
			}
		default:
			if !e.scalar(v, ind+len(it.Key.(string))+2, child) {
				return false
			}
		}
	}
	return true
}

func (e *fastEmitter) sequence(l []any, ind int) bool {
	for _, item := range l {
		switch v := item.(type) {
		case sops.Comment, []any:
			if _, ok := v.([]any); ok && len(v.([]any)) == 0 {
				e.pad(ind)
				e.buf.WriteString("- []\n")
				continue
			}
			return false
		case sops.TreeBranch:
			e.pad(ind)
			if len(v) == 0 {
				e.buf.WriteString("- {}\n")
				continue
			}
			e.buf.WriteString("- ")
			if !e.mapping(v, ind+2, ind+e.indent, true) {
				return false
			}
		default:
			if s, ok := v.(string); ok && strings.Contains(s, "\n") {
				return false
			}
			e.pad(ind)
			e.buf.WriteByte('-')
			if !e.scalar(v, ind+2, ind+2) {
				return false
			}
		}
	}
	return true
}

// fastEmit writes documents, or reports ok=false when a value is outside
// the subset.
func fastEmit(branches sops.TreeBranches, indent int) ([]byte, bool) {
	if indent != DefaultIndent {
		return nil, false // only the default indentation is checked against yaml.v3
	}
	e := &fastEmitter{indent: indent}
	size := 0
	for _, b := range branches {
		size += emitSizeHint(b, 0, indent) + 4
	}
	e.buf.Grow(size)
	for i, b := range branches {
		if i > 0 {
			e.buf.WriteString("---\n")
		}
		if len(b) == 0 {
			e.buf.WriteString("{}\n")
			continue
		}
		if !e.mapping(b, 0, e.indent, false) {
			return nil, false
		}
	}
	return e.buf.Bytes(), true
}

// emitSizeHint estimates the emitted size of v, so that the output buffer is
// allocated once.
func emitSizeHint(v any, depth, indent int) int {
	switch v := v.(type) {
	case sops.TreeBranch:
		n := 0
		for _, it := range v {
			if k, ok := it.Key.(string); ok {
				n += len(k)
			}
			n += depth*indent + 3 + emitSizeHint(it.Value, depth+1, indent)
		}
		return n
	case []any:
		n := 0
		for _, x := range v {
			n += depth*indent + 3 + emitSizeHint(x, depth+1, indent)
		}
		return n
	case string:
		return len(v) + 1
	case sops.Comment:
		return len(v.Value) + 3
	}
	return 24
}
