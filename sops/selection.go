package sops

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultUnencryptedSuffix is the selection rule used when none is given.
const DefaultUnencryptedSuffix = "_unencrypted"

// A Selection says which values of a file are encrypted and which the MAC
// covers. The same type is a file's metadata (Metadata embeds it), a
// .sops.yaml creation rule's settings (package rules) and the encryption
// options of package sopsfile. At most one of the six selection rules may be
// set; the field tags are the names SOPS gives them in the metadata and in
// .sops.yaml.
type Selection struct {
	UnencryptedSuffix       string `yaml:"unencrypted_suffix"`
	EncryptedSuffix         string `yaml:"encrypted_suffix"`
	UnencryptedRegex        string `yaml:"unencrypted_regex"`
	EncryptedRegex          string `yaml:"encrypted_regex"`
	UnencryptedCommentRegex string `yaml:"unencrypted_comment_regex"`
	EncryptedCommentRegex   string `yaml:"encrypted_comment_regex"`
	// MACOnlyEncrypted makes the MAC cover the encrypted values only.
	MACOnlyEncrypted bool `yaml:"mac_only_encrypted"`
}

// ErrSelectionConflict is returned when more than one selection rule is set.
var ErrSelectionConflict = errors.New("cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex")

// A SelectionRule is one of the six selection rules of a Selection: its
// name in the metadata and .sops.yaml, and its field.
type SelectionRule struct {
	Name  string
	Value *string
}

// Fields lists the selection rules of s, in SOPS's order, pointing into s.
func (s *Selection) Fields() [6]SelectionRule {
	return [6]SelectionRule{
		{"unencrypted_suffix", &s.UnencryptedSuffix},
		{"encrypted_suffix", &s.EncryptedSuffix},
		{"unencrypted_regex", &s.UnencryptedRegex},
		{"encrypted_regex", &s.EncryptedRegex},
		{"unencrypted_comment_regex", &s.UnencryptedCommentRegex},
		{"encrypted_comment_regex", &s.EncryptedCommentRegex},
	}
}

// HasRule reports whether one of the six selection rules is set.
func (s Selection) HasRule() bool {
	return s.UnencryptedSuffix != "" || s.EncryptedSuffix != "" || s.UnencryptedRegex != "" ||
		s.EncryptedRegex != "" || s.UnencryptedCommentRegex != "" || s.EncryptedCommentRegex != ""
}

// Validate returns ErrSelectionConflict when more than one selection rule
// is set. It does not compile the regular expressions.
func (s Selection) Validate() error {
	n := 0
	for _, r := range s.Fields() {
		if *r.Value != "" {
			n++
		}
	}
	if n > 1 {
		return ErrSelectionConflict
	}
	return nil
}

// WithDefault returns s, with DefaultUnencryptedSuffix when no selection
// rule is set, as SOPS encrypts.
func (s Selection) WithDefault() Selection {
	if !s.HasRule() {
		s.UnencryptedSuffix = DefaultUnencryptedSuffix
	}
	return s
}

// SingleValue returns the selection of a file whose plaintext is one value
// that is always encrypted (the binary store), as sops 3.13 encrypts it: no
// selection rule, not even the default, and a MAC over everything. ignored
// names the rules of s that are dropped and that sops warns about
// (unencrypted_comment_regex and mac_only_encrypted, which can change
// nothing there, are dropped silently, as by sops).
func (s Selection) SingleValue() (sel Selection, ignored []string) {
	for _, r := range s.Fields() {
		if *r.Value != "" && r.Name != "unencrypted_comment_regex" {
			ignored = append(ignored, r.Name)
		}
	}
	return Selection{}, ignored
}

// SetSelection validates s and makes it the metadata's selection, with
// DefaultUnencryptedSuffix when no rule is set, as SOPS encrypts.
func (m *Metadata) SetSelection(s Selection) error {
	if err := s.Validate(); err != nil {
		return err
	}
	m.Selection = s.WithDefault()
	return nil
}

// rules holds the compiled selection rules of a tree's metadata.
type rules struct {
	m                *Metadata
	pathRegex        *regexp.Regexp
	unencCom, encCom *regexp.Regexp
	pathHitEncrypts  bool // a matching path component makes values encrypted
	hasPathRule      bool
	trackComments    bool
}

// compiled caches the rules' regular expressions: a controller decrypts
// many files with the same few rules (a *regexp.Regexp is safe for
// concurrent use). Bounded; beyond the bound, expressions are compiled
// every time.
var compiled sync.Map // string -> *regexp.Regexp
var compiledN atomic.Int32

func compileCached(expr string) (*regexp.Regexp, error) {
	if re, ok := compiled.Load(expr); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	if compiledN.Load() < 256 {
		if _, loaded := compiled.LoadOrStore(expr, re); !loaded {
			compiledN.Add(1)
		}
	}
	return re, nil
}

func compileRules(m *Metadata) (*rules, error) {
	r := &rules{m: m}
	var err error
	switch {
	case m.UnencryptedSuffix != "":
		r.hasPathRule = true
	case m.EncryptedSuffix != "":
		r.hasPathRule, r.pathHitEncrypts = true, true
	case m.UnencryptedRegex != "":
		r.hasPathRule = true
		if r.pathRegex, err = compileCached(m.UnencryptedRegex); err != nil {
			return nil, fmt.Errorf("invalid unencrypted_regex: %v", err)
		}
	case m.EncryptedRegex != "":
		r.hasPathRule, r.pathHitEncrypts = true, true
		if r.pathRegex, err = compileCached(m.EncryptedRegex); err != nil {
			return nil, fmt.Errorf("invalid encrypted_regex: %v", err)
		}
	}
	if m.UnencryptedCommentRegex != "" {
		if r.unencCom, err = compileCached(m.UnencryptedCommentRegex); err != nil {
			return nil, fmt.Errorf("invalid unencrypted_comment_regex: %v", err)
		}
		r.trackComments = true
	}
	if m.EncryptedCommentRegex != "" {
		if r.encCom, err = compileCached(m.EncryptedCommentRegex); err != nil {
			return nil, fmt.Errorf("invalid encrypted_comment_regex: %v", err)
		}
		r.trackComments = true
	}
	return r, nil
}

// keyHits reports whether a path component matches the path rule.
func (r *rules) keyHits(k string) bool {
	switch {
	case r.m.UnencryptedSuffix != "":
		return strings.HasSuffix(k, r.m.UnencryptedSuffix)
	case r.m.EncryptedSuffix != "":
		return strings.HasSuffix(k, r.m.EncryptedSuffix)
	case r.pathRegex != nil:
		return r.pathRegex.MatchString(k)
	}
	return false
}

// shouldEncrypt mirrors SOPS's Tree.shouldBeEncrypted.
func (r *rules) shouldEncrypt(pathHit bool, comments [][]string, isComment bool) bool {
	enc := true
	if r.hasPathRule {
		enc = pathHit == r.pathHitEncrypts
	}
	if r.unencCom != nil {
	outer:
		for _, cs := range comments {
			for _, c := range cs {
				if r.unencCom.MatchString(c) {
					enc = false
					break outer
				}
			}
		}
	}
	if r.encCom != nil {
		enc = false
		last := len(comments) - 1
	outer2:
		for i, cs := range comments {
			for j, c := range cs {
				// The comment line that matches does not encrypt itself.
				if isComment && i == last && j == len(cs)-1 {
					continue
				}
				if r.encCom.MatchString(c) {
					enc = true
					break outer2
				}
			}
		}
	}
	return enc
}

// Diff lists how the selection s (a file's metadata) differs from want (a
// .sops.yaml creation rule's), as SOPS encrypts with it: each selection rule
// and mac_only_encrypted, one line per difference, naming the rule and both
// values (selection rules are configuration, never secret). A want without
// a rule compares as DefaultUnencryptedSuffix.
func (s Selection) Diff(want Selection) []string {
	want = want.WithDefault()
	var lines []string
	hf, wf := s.Fields(), want.Fields()
	for i := range hf {
		if h, w := *hf[i].Value, *wf[i].Value; h != w {
			lines = append(lines, fmt.Sprintf("%s: %q, rule: %q", hf[i].Name, h, w))
		}
	}
	if s.MACOnlyEncrypted != want.MACOnlyEncrypted {
		lines = append(lines, fmt.Sprintf("mac_only_encrypted: %t, rule: %t", s.MACOnlyEncrypted, want.MACOnlyEncrypted))
	}
	return lines
}
