package build

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The postBuild variable syntax, as Flux's substitution library (a fork of
// drone/envsubst in fluxcd/pkg) reads it: the whole text is parsed, and a
// malformed ${...} anywhere is an error. $$ is a literal $ (so $${v} is
// the text ${v}); there is no bare $v. Inside ${...}:
//
//	${v}                      the value
//	${#v}                     its length in bytes
//	${v:-w} ${v:=w} ${v=w}    v when not empty, else w (also :+ and :?,
//	                          which Flux's library treats the same way)
//	${v:pos} ${v:pos:len}     a substring (bytes; pos < 0 counts from the end)
//	${v/p/r} ${v//p/r}        replace the first / every p (literal) by r
//	${v/#p/r} ${v/%p/r}       replace p when v starts / ends with it
//	${v#g} ${v##g}            trim the shortest / longest prefix matching
//	${v%g} ${v%%g}            the glob g, or suffix (*, ?, [a-z], [^a], \x)
//	${v^} ${v^^} ${v,} ${v,,} upper / lower case the first / every letter
//
// Arguments may themselves be ${...}. A variable without a value is an
// error in strict mode, except under the default operators.

// ErrBadSubstitution is returned for a malformed ${...}.
var ErrBadSubstitution = errors.New("bad substitution")

type envsubst struct {
	s      string
	pos    int
	lookup func(string) (string, bool)
}

// expand evaluates the variables of s.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	p := &envsubst{s: s, lookup: lookup}
	var b strings.Builder
	for p.pos < len(s) {
		c := s[p.pos]
		if c == '$' && p.pos+1 < len(s) {
			switch s[p.pos+1] {
			case '$':
				b.WriteByte('$')
				p.pos += 2
				continue
			case '{':
				p.pos += 2
				v, err := p.function()
				if err != nil {
					return "", err
				}
				b.WriteString(v)
				continue
			}
		}
		b.WriteByte(c)
		p.pos++
	}
	return b.String(), nil
}

func (p *envsubst) peek() rune {
	if p.pos >= len(p.s) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.pos:])
	return r
}

func (p *envsubst) peekAt(off int) byte {
	if p.pos+off >= len(p.s) {
		return 0
	}
	return p.s[p.pos+off]
}

// ident reads a variable name (letters, digits, _).
func (p *envsubst) ident() string {
	start := p.pos
	for p.pos < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.pos:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			break
		}
		p.pos += n
	}
	return p.s[start:p.pos]
}

// ops reads up to max characters in set.
func (p *envsubst) ops(set string, max int) string {
	start := p.pos
	for p.pos-start < max && p.pos < len(p.s) && strings.IndexByte(set, p.s[p.pos]) >= 0 {
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *envsubst) closeBrace() error {
	if p.peekAt(0) != '}' {
		return ErrBadSubstitution
	}
	p.pos++
	return nil
}

// function evaluates what follows ${.
func (p *envsubst) function() (string, error) {
	if p.peekAt(0) == '#' {
		p.pos++
		name := p.ident()
		if name == "" || p.closeBrace() != nil {
			return "", ErrBadSubstitution
		}
		v, err := p.value(name, "#")
		return strconv.Itoa(len(v)), err
	}
	name := p.ident()
	if name == "" {
		return "", fmt.Errorf("%w: unable to parse variable name", ErrBadSubstitution)
	}
	switch p.peekAt(0) {
	case ':':
		if c := p.peekAt(1); c != 0 && strings.IndexByte("=-?+", c) >= 0 {
			op := p.s[p.pos : p.pos+2]
			p.pos += 2
			return p.defaultFunc(name, op)
		}
		p.pos++
		return p.substring(name)
	case '=':
		p.pos++
		return p.defaultFunc(name, "=")
	case ',', '^':
		op := p.ops(",^", 2)
		if err := p.closeBrace(); err != nil {
			return "", err
		}
		v, err := p.value(name, op)
		return changeCase(v, op), err
	case '/':
		return p.replace(name)
	case '#', '%':
		op := p.ops(p.s[p.pos:p.pos+1], 2)
		pat, err := p.param(func(r rune) bool { return r != '}' }, false)
		if err != nil {
			return "", err
		}
		if err := p.closeBrace(); err != nil {
			return "", err
		}
		v, err := p.value(name, op)
		return trimGlob(v, pat, len(op) == 2, op[0] == '%'), err
	}
	if p.peekAt(0) != '}' {
		return "", fmt.Errorf("%w: missing closing brace", ErrBadSubstitution)
	}
	p.pos++
	return p.value(name, "")
}

// value looks name up; a variable without a value is an error unless op
// supplies a default.
func (p *envsubst) value(name, op string) (string, error) {
	v, ok := p.lookup(name)
	if !ok {
		switch op {
		case "=", ":=", ":-", ":?", ":+":
		default:
			return "", fmt.Errorf("%w: %q", ErrUndefinedVariable, name)
		}
	}
	return v, nil
}

// param reads one argument: a nested ${...}, or text up to the first
// character accept refuses (or up to a ${). With escapes, $$ is $ and \/
// and \\ are / and \.
func (p *envsubst) param(accept func(rune) bool, escapes bool) (string, error) {
	if p.peekAt(0) == '$' && p.peekAt(1) == '{' {
		p.pos += 2
		return p.function()
	}
	var b strings.Builder
	for p.pos < len(p.s) {
		c, c1 := p.s[p.pos], p.peekAt(1)
		if c == '$' && c1 == '{' {
			break
		}
		if escapes && ((c == '$' && c1 == '$') || (c == '\\' && (c1 == '/' || c1 == '\\'))) {
			b.WriteByte(c1)
			p.pos += 2
			continue
		}
		r, n := utf8.DecodeRuneInString(p.s[p.pos:])
		if !accept(r) {
			break
		}
		b.WriteString(p.s[p.pos : p.pos+n])
		p.pos += n
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("%w: unable to parse substitution within function", ErrBadSubstitution)
	}
	return b.String(), nil
}

// defaultFunc evaluates ${v<op>word...}: v when not empty, else the
// words (text and ${...}) joined.
func (p *envsubst) defaultFunc(name, op string) (string, error) {
	var def strings.Builder
	for p.peekAt(0) != '}' {
		a, err := p.param(func(r rune) bool { return r != '}' }, false)
		if err != nil {
			return "", err
		}
		def.WriteString(a)
	}
	p.pos++
	v, err := p.value(name, op)
	if v == "" {
		v = def.String()
	}
	return v, err
}

// substring evaluates ${v:pos} and ${v:pos:len}.
func (p *envsubst) substring(name string) (string, error) {
	args := make([]string, 0, 2)
	a, err := p.param(func(r rune) bool { return r != ':' && r != '}' }, false)
	if err != nil {
		return "", err
	}
	args = append(args, a)
	switch p.peekAt(0) {
	case '}':
		p.pos++
	case ':':
		p.pos++
		a, err := p.param(func(r rune) bool { return r != '}' }, false)
		if err != nil {
			return "", err
		}
		if err := p.closeBrace(); err != nil {
			return "", err
		}
		args = append(args, a)
	default:
		return "", ErrBadSubstitution
	}
	v, err := p.value(name, ":")
	if err != nil {
		return "", err
	}
	return substr(v, args)
}

// replace evaluates ${v/p/r}, ${v//p/r}, ${v/#p/r} and ${v/%p/r} (r may
// be empty).
func (p *envsubst) replace(name string) (string, error) {
	op := "/"
	p.pos++
	if c := p.peekAt(0); c == '/' || c == '#' || c == '%' {
		op += string(c)
		p.pos++
	}
	pat, err := p.param(func(r rune) bool { return r != '/' }, true)
	if err != nil {
		return "", err
	}
	if p.peekAt(0) != '/' {
		return "", ErrBadSubstitution
	}
	for p.peekAt(0) == '/' {
		p.pos++
	}
	repl, hasRepl := "", false
	if p.peekAt(0) != '}' {
		if repl, err = p.param(func(r rune) bool { return r != '}' }, true); err != nil {
			return "", err
		}
		hasRepl = true
	}
	if err := p.closeBrace(); err != nil {
		return "", err
	}
	v, err := p.value(name, op)
	if err != nil {
		return "", err
	}
	switch op {
	case "/":
		return strings.Replace(v, pat, repl, 1), nil
	case "//":
		return strings.ReplaceAll(v, pat, repl), nil
	case "/#":
		if hasRepl && strings.HasPrefix(v, pat) {
			return repl + v[len(pat):], nil
		}
	case "/%":
		if hasRepl && strings.HasSuffix(v, pat) {
			return v[:len(v)-len(pat)] + repl, nil
		}
	}
	return v, nil
}

// ErrSubstring is returned for ${v:pos:len} whose length ends before its
// start (Flux's library panics on it).
var ErrSubstring = errors.New("substring length ends before its position")

// substr returns v[pos:pos+len] in bytes, as Flux's library does: an
// unparsable position or length gives v, a position past the end "".
func substr(v string, args []string) (string, error) {
	pos, err := strconv.Atoi(args[0])
	if err != nil {
		return v, nil
	}
	if pos < 0 {
		pos = max(0, len(v)+pos)
	}
	n := len(v)
	if len(args) == 2 {
		if n, err = strconv.Atoi(args[1]); err != nil {
			return v, nil
		}
	}
	if pos >= len(v) {
		return "", nil
	}
	if len(args) == 1 || pos+n >= len(v) {
		return v[pos:], nil
	}
	if n < 0 {
		return "", ErrSubstring
	}
	return v[pos : pos+n], nil
}

func changeCase(v, op string) string {
	first := func(f func(rune) rune) string {
		if v == "" {
			return v
		}
		r, n := utf8.DecodeRuneInString(v)
		return string(f(r)) + v[n:]
	}
	switch op {
	case "^":
		return first(unicode.ToUpper)
	case "^^":
		return strings.ToUpper(v)
	case ",":
		return first(unicode.ToLower)
	case ",,":
		return strings.ToLower(v)
	}
	return v
}

// trimGlob removes from v the shortest (or longest) non-empty prefix (or,
// with suffix, suffix) that matches the glob pat. Suffixes are matched
// as Flux's library does, by reversing v and pat. A malformed glob
// leaves v as it is.
func trimGlob(v, pat string, longest, suffix bool) string {
	if suffix {
		return reverse(trimGlob(reverse(v), reverse(pat), longest, false))
	}
	re, err := globRegexp(pat)
	if err != nil {
		return v
	}
	loc := re.longest.FindStringIndex(v)
	if loc == nil || loc[1] == 0 {
		return v
	}
	if longest {
		return v[loc[1]:]
	}
	for n := 0; n < loc[1]; {
		_, w := utf8.DecodeRuneInString(v[n:])
		if n += w; re.full.MatchString(v[:n]) {
			return v[n:]
		}
	}
	return v[loc[1]:]
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

type glob struct{ longest, full *regexp.Regexp }

// globRegexp compiles a glob (*, ?, [a-z], [^a-z], \x; * and ? match
// any character, / included) into a leftmost-longest prefix matcher and
// a full matcher.
func globRegexp(pat string) (*glob, error) {
	var b strings.Builder
	rs := []rune(pat)
	lit := func(r rune) string { return fmt.Sprintf(`\x{%x}`, r) }
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '\\':
			if i++; i >= len(rs) {
				return nil, ErrBadSubstitution
			}
			b.WriteString(lit(rs[i]))
		case '[':
			j, class, err := globClass(rs, i+1, lit)
			if err != nil {
				return nil, err
			}
			i = j
			b.WriteString(class)
		default:
			b.WriteString(lit(rs[i]))
		}
	}
	longest, err := regexp.Compile(`(?s)^(?:` + b.String() + `)`)
	if err != nil {
		return nil, err
	}
	longest.Longest()
	full, err := regexp.Compile(`(?s)^(?:` + b.String() + `)$`)
	if err != nil {
		return nil, err
	}
	return &glob{longest, full}, nil
}

// globClass translates the class starting at rs[i] (after '['); it
// returns the index of the closing ']'.
func globClass(rs []rune, i int, lit func(rune) string) (int, string, error) {
	var b strings.Builder
	b.WriteString("[")
	if i < len(rs) && rs[i] == '^' {
		b.WriteString("^")
		i++
	}
	esc := func() (rune, error) {
		if i >= len(rs) || rs[i] == '-' || rs[i] == ']' {
			return 0, ErrBadSubstitution
		}
		if rs[i] == '\\' {
			if i++; i >= len(rs) {
				return 0, ErrBadSubstitution
			}
		}
		i++
		return rs[i-1], nil
	}
	for n := 0; ; n++ {
		if i < len(rs) && rs[i] == ']' && n > 0 {
			b.WriteString("]")
			return i, b.String(), nil
		}
		lo, err := esc()
		if err != nil {
			return 0, "", err
		}
		hi := lo
		if i < len(rs) && rs[i] == '-' {
			i++
			if hi, err = esc(); err != nil {
				return 0, "", err
			}
		}
		b.WriteString(lit(lo) + "-" + lit(hi))
	}
}
