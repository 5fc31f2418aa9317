package yaml

import (
	"bytes"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"go.yaml.in/yaml/v3"

	"github.com/lacre/lacre/sops"
)

// fast_load.go and fast_emit.go are a fast path for the YAML that SOPS
// files and Kubernetes manifests are usually made of: block mappings and sequences of plain or
// simply quoted scalars and literal blocks. Anything outside that subset
// (comments, anchors, tags, flow collections, folded or escaped scalars,
// multi-line plain scalars, ...) makes the fast path give up, and the
// store uses yaml.v3. A differential test and fuzzer check that whenever
// the fast path answers, it answers exactly what yaml.v3 does.

// ---- loading ----

type fastLine struct {
	indent int
	text   string // without indentation and trailing spaces
	raw    string // the line as written, without the newline
}

type fastParser struct {
	lines []fastLine
	pos   int
	nodes int
}

// fastLoad parses in, or reports ok=false when it uses anything outside the
// fast subset.
func fastLoad(in []byte) (docs sops.TreeBranches, ok bool) {
	return fastLoadString(in, string(in))
}

// fastLoadView is fastLoad without the copy of in: the tree's strings point
// into in, which must not change while the tree is in use.
func fastLoadView(in []byte) (docs sops.TreeBranches, ok bool) {
	if len(in) == 0 {
		return nil, false
	}
	return fastLoadString(in, unsafe.String(&in[0], len(in)))
}

func fastLoadString(in []byte, text string) (docs sops.TreeBranches, ok bool) {
	if len(in) == 0 || in[len(in)-1] != '\n' || !fastChars(in) {
		return nil, false
	}
	lines := make([]fastLine, 0, bytes.Count(in, []byte("\n"))+1)
	for raw := range strings.SplitSeq(text, "\n") {
		t := strings.TrimLeft(raw, " ")
		lines = append(lines, fastLine{indent: len(raw) - len(t), text: strings.TrimRight(t, " "), raw: raw})
	}
	// The final "\n" leaves an empty last line.
	if lines[len(lines)-1].text == "" {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		if l.indent == 0 && (strings.HasPrefix(l.text, "---") || strings.HasPrefix(l.text, "...")) {
			return nil, false
		}
	}
	p := &fastParser{lines: lines}
	p.skipBlank()
	if p.pos == len(p.lines) {
		return nil, false
	}
	if p.lines[p.pos].indent != 0 {
		return nil, false
	}
	if p.lines[p.pos].text == "{}" {
		p.pos++
		p.skipBlank()
		return sops.TreeBranches{{}}, p.pos == len(p.lines)
	}
	b, ok := p.mapping(0, 0)
	if !ok {
		return nil, false
	}
	p.skipBlank()
	if p.pos != len(p.lines) {
		return nil, false
	}
	return sops.TreeBranches{b}, true
}

// charClass sorts bytes for fastChars: 0 for ASCII inside the fast subset,
// 1 for ASCII outside it (control characters but '\n', tab and '\r'
// included, DEL, and the indicators of comments (#), anchors and aliases
// (& *), tags (! %) and '`'), 2 for the bytes of multi-byte UTF-8.
var charClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = 1
	}
	t['\n'] = 0
	for _, c := range "#&*!%`\x7f" {
		t[c] = 1
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = 2
	}
	return t
}()

// fastChars accepts printable text: no control characters, no invalid
// UTF-8, and none of the characters YAML treats specially (NEL, the line
// and paragraph separators, the byte order mark). A table lookup per byte
// keeps the loop free of data-dependent branches (base64 mixes every class
// of letter).
func fastChars(in []byte) bool {
	for i := 0; i < len(in); {
		// Eight bytes at a time while all are in the subset.
		for i+8 <= len(in) {
			w := in[i : i+8 : i+8]
			if charClass[w[0]]|charClass[w[1]]|charClass[w[2]]|charClass[w[3]]|
				charClass[w[4]]|charClass[w[5]]|charClass[w[6]]|charClass[w[7]] != 0 {
				break
			}
			i += 8
		}
		if i == len(in) {
			break
		}
		switch charClass[in[i]] {
		case 0:
			i++
		case 1:
			return false
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError || r <= 0x9f || r == 0x2028 || r == 0x2029 || r == 0xfeff || r >= 0xfff0 {
				return false
			}
			i += size
		}
	}
	return true
}

func (p *fastParser) skipBlank() {
	for p.pos < len(p.lines) && p.lines[p.pos].text == "" {
		p.pos++
	}
}

func (p *fastParser) count(depth int) bool {
	p.nodes++
	return p.nodes <= maxNodes && depth <= maxDepth
}

// hasColonSpace reports whether s contains ": ". Values without a space
// (ENC[...] among them, whose colons would each stop a plain search) are
// ruled out in one fast scan.
func hasColonSpace(s string) bool {
	return strings.IndexByte(s, ' ') >= 0 && strings.Contains(s, ": ")
}

// splitKey splits "key: value" or "key:" into its parts.
func splitKey(text string) (key, value string, ok bool) {
	if strings.HasPrefix(text, "\"") {
		end := strings.IndexByte(text[1:], '"')
		if end < 0 {
			return "", "", false
		}
		k := text[1 : end+1]
		if len(k) > 128 || strings.ContainsAny(k, "\\") {
			return "", "", false
		}
		rest := text[end+2:]
		if rest == ":" {
			return k, "", true
		}
		if strings.HasPrefix(rest, ": ") {
			return k, strings.TrimLeft(rest[2:], " "), true
		}
		return "", "", false
	}
	if strings.HasSuffix(text, ":") && !strings.Contains(text[:len(text)-1], ": ") {
		key = text[:len(text)-1]
	} else {
		i := strings.Index(text, ": ")
		if i < 0 {
			return "", "", false
		}
		key, value = text[:i], strings.TrimLeft(text[i+2:], " ")
		if hasColonSpace(value) || strings.HasSuffix(value, ":") {
			return "", "", false
		}
	}
	if key == "" || !plainKeyOK(key) {
		return "", "", false
	}
	return key, value, true
}

func plainKeyOK(k string) bool {
	if identifier(k) && len(k) > 5 {
		return true // no reserved word is longer than five letters
	}
	if len(k) > 128 || k != strings.TrimSpace(k) || strings.Contains(k, "  ") {
		return false
	}
	if strings.ContainsAny(k[:1], "-?:,[]{}|>'\"@") || strings.ContainsAny(k, "[]{},:\"'") {
		return false
	}
	// Keys must read back as strings.
	v, ok := resolvePlain(k)
	_, isStr := v.(string)
	return ok && isStr
}

// identifier reports whether k is a letter or '_' followed by letters,
// digits, '_' and '-', at most 128 bytes.
func identifier(k string) bool {
	if k == "" || len(k) > 128 || !(k[0] >= 'a' && k[0] <= 'z' || k[0] >= 'A' && k[0] <= 'Z' || k[0] == '_') {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// resolvePlain types a plain scalar the way yaml.v3 does, for the cases it
// can decide cheaply.
func resolvePlain(s string) (any, bool) {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return nil, true
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	case "<<":
		return nil, false
	}
	c := s[0]
	if c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' {
		if decimalInt.MatchString(s) {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= math.MinInt && n <= math.MaxInt {
				return int(n), true
			}
		}
		// Floats, timestamps, other bases: let yaml.v3 decide.
		n := &yaml.Node{Kind: yaml.ScalarNode, Value: s}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, false
		}
		switch v.(type) {
		case uint64, int64:
			return nil, false
		}
		return v, true
	}
	return s, true
}

var decimalInt = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)

// scalar parses a value on the same line as its key or dash.
func (p *fastParser) scalar(v string, indent int) (any, bool) {
	switch {
	case v == "{}":
		return sops.TreeBranch{}, true
	case v == "[]":
		return []any(nil), true
	case v == "|" || v == "|-":
		return p.literal(v == "|", indent)
	case strings.HasPrefix(v, "\""):
		if len(v) < 2 || !strings.HasSuffix(v, "\"") || strings.ContainsAny(v[1:len(v)-1], "\"\\") {
			return nil, false
		}
		return v[1 : len(v)-1], true
	case strings.HasPrefix(v, "'"):
		if len(v) < 2 || !strings.HasSuffix(v, "'") || strings.Contains(v[1:len(v)-1], "'") {
			return nil, false
		}
		return v[1 : len(v)-1], true
	}
	if strings.ContainsAny(v[:1], "-?:,[]{}|>'\"@") && !(v[0] == '-' && len(v) > 1 && v[1] != ' ') {
		return nil, false
	}
	if strings.HasPrefix(v, "- ") || v == "-" || hasColonSpace(v) || strings.HasSuffix(v, ":") {
		return nil, false
	}
	// A plain scalar continued on the next lines is outside the subset.
	if n := p.pos; n < len(p.lines) && p.lines[n].text != "" && p.lines[n].indent > indent {
		return nil, false
	}
	return resolvePlain(v)
}

// literal reads a "|" (clip) or "|-" (strip) block whose lines are
// indented more than indent.
func (p *fastParser) literal(clip bool, indent int) (any, bool) {
	blockIndent := -1
	var lines []string
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.text == "" {
			if l.raw != "" {
				return nil, false // whitespace-only lines are outside the subset
			}
			lines = append(lines, "")
			p.pos++
			continue
		}
		if l.indent <= indent {
			break
		}
		if blockIndent < 0 {
			blockIndent = l.indent
		}
		if l.indent != blockIndent || l.raw != strings.TrimRight(l.raw, " ") {
			return nil, false
		}
		lines = append(lines, l.text)
		p.pos++
	}
	// Trailing blank lines are not part of a clipped or stripped block.
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
		p.pos--
	}
	if blockIndent < 0 || len(lines) == 0 {
		return nil, false
	}
	s := strings.Join(lines, "\n")
	if clip {
		s += "\n"
	}
	return s, true
}

func (p *fastParser) mapping(indent, depth int) (sops.TreeBranch, bool) {
	if !p.count(depth) {
		return nil, false
	}
	b := make(sops.TreeBranch, 0, p.siblings(indent))
	var seen map[string]bool // only for large mappings; small ones scan b
	for {
		p.skipBlank()
		if p.pos == len(p.lines) {
			return b, true
		}
		l := p.lines[p.pos]
		if l.indent < indent {
			return b, true
		}
		if l.indent > indent {
			return nil, false
		}
		if strings.HasPrefix(l.text, "- ") || l.text == "-" {
			return b, true // a sequence at this indent belongs to the parent key
		}
		k, v, ok := splitKey(l.text)
		if !ok || duplicateKey(b, &seen, k) {
			return nil, false
		}
		p.pos++
		val, ok := p.value(v, indent, depth)
		if !ok {
			return nil, false
		}
		b = append(b, sops.TreeItem{Key: k, Value: val})
	}
}

// siblings estimates the number of keys of the mapping at indent that
// starts at the current line, looking at most a few hundred lines ahead, so
// that the mapping is allocated once.
func (p *fastParser) siblings(indent int) int {
	n := 0
	for i := p.pos; i < len(p.lines) && i < p.pos+512 && n < 64; i++ {
		l := &p.lines[i]
		if l.text == "" || l.indent > indent {
			continue
		}
		if l.indent < indent || l.text[0] == '-' && (len(l.text) == 1 || l.text[1] == ' ') {
			break
		}
		n++
	}
	return max(n, 1)
}

// duplicateKey reports whether k is already a key of b, and records it.
func duplicateKey(b sops.TreeBranch, seen *map[string]bool, k string) bool {
	const small = 16
	if len(b) < small {
		for _, it := range b {
			if it.Key == k {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*small)
		for _, it := range b {
			(*seen)[it.Key.(string)] = true
		}
	}
	if (*seen)[k] {
		return true
	}
	(*seen)[k] = true
	return false
}

// value parses what follows "key:" at indent.
func (p *fastParser) value(v string, indent, depth int) (any, bool) {
	if v != "" {
		return p.scalar(v, indent)
	}
	p.skipBlank()
	if p.pos == len(p.lines) {
		return nil, true
	}
	next := p.lines[p.pos]
	switch {
	case next.indent > indent && (strings.HasPrefix(next.text, "- ") || next.text == "-"):
		return p.sequence(next.indent, depth+1)
	case next.indent == indent && (strings.HasPrefix(next.text, "- ") || next.text == "-"):
		return p.sequence(indent, depth+1)
	case next.indent > indent:
		return p.mapping(next.indent, depth+1)
	}
	return nil, true
}

func (p *fastParser) sequence(indent, depth int) ([]any, bool) {
	if !p.count(depth) {
		return nil, false
	}
	var out []any
	for {
		p.skipBlank()
		if p.pos == len(p.lines) {
			return out, true
		}
		l := p.lines[p.pos]
		if l.indent < indent || !(strings.HasPrefix(l.text, "- ") || l.text == "-") {
			if l.indent > indent {
				return nil, false
			}
			return out, true
		}
		if l.indent > indent {
			return nil, false
		}
		if l.text == "-" {
			return nil, false
		}
		rest := strings.TrimLeft(l.text[2:], " ")
		itemIndent := indent + (len(l.text) - len(rest))
		if strings.HasPrefix(rest, "- ") || rest == "-" {
			return nil, false
		}
		if _, _, ok := splitKey(rest); ok {
			// A mapping that starts on the dash line: rewrite the line as
			// the mapping's first line at its own indentation.
			p.lines[p.pos] = fastLine{indent: itemIndent, text: rest, raw: strings.Repeat(" ", itemIndent) + rest}
			m, ok := p.mapping(itemIndent, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, m)
			continue
		}
		p.pos++
		val, ok := p.scalar(rest, indent)
		if !ok {
			return nil, false
		}
		out = append(out, val)
	}
}
