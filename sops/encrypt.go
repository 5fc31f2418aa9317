package sops

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FormatVersion is the `version` written into the metadata: the version of
// the SOPS format lacre writes, which the sops CLI compares against its own.
const FormatVersion = "3.13.3"

// macOnlyEncryptedInit is sha256("sops"), hashed first when
// mac_only_encrypted is set.
var macOnlyEncryptedInit, _ = hex.DecodeString("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69")

// Errors of the MAC check. Both make the sops CLI exit with status 51.
var (
	ErrMACMismatch = errors.New("MAC mismatch: the file's values do not match its MAC (modified outside sops/lacre, or tampered)")
	ErrMACDecrypt  = errors.New("cannot decrypt the MAC (tampered MAC or lastmodified, or wrong data key)")
)

// A ValueError reports a value that failed to encrypt or decrypt. Path is the
// key path of the value (key names only, never the value).
type ValueError struct {
	Path string
	Err  error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("could not decrypt value at %s: %v", e.Path, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

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

// leafFunc transforms one leaf. aad is the key path ("a:b:"), encrypted says
// whether the selection rules cover it.
type leafFunc func(v any, aad string, encrypted bool) (any, error)

type walker struct {
	r    *rules
	leaf leafFunc
	// slot is where the value passed to leaf is stored in the tree; for a
	// comment that is a mapping key, keyComment is that comment.
	slot       *any
	keyComment *Comment
}

func commentAAD(prefix string) string {
	if prefix == "" {
		return ":"
	}
	return prefix
}

func (w *walker) value(v any, prefix string, pathHit bool, comments [][]string) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case TreeBranch:
		return w.branch(v, prefix, pathHit, comments)
	case []any:
		return w.slice(v, prefix, pathHit, comments)
	case []byte:
		return w.leafAt(string(v), prefix, pathHit, comments, false)
	case string, int, float64, bool, time.Time:
		return w.leafAt(v, prefix, pathHit, comments, false)
	case Comment:
		return w.leafAt(v, prefix, pathHit, comments, true)
	}
	return nil, fmt.Errorf("unsupported value type %T at %s", v, displayPath(prefix))
}

func (w *walker) leafAt(v any, prefix string, pathHit bool, comments [][]string, isComment bool) (any, error) {
	aad := prefix
	if isComment || aad == "" {
		aad = commentAAD(prefix)
	}
	return w.leaf(v, aad, w.r.shouldEncrypt(pathHit, comments, isComment))
}

func (w *walker) slice(in []any, prefix string, pathHit bool, comments [][]string) ([]any, error) {
	if w.r.trackComments {
		comments = append(comments[:len(comments):len(comments)], nil)
	}
	for i, v := range in {
		c, isComment := v.(Comment)
		if isComment && w.r.trackComments {
			comments[len(comments)-1] = append(comments[len(comments)-1], c.Value)
		}
		w.slot, w.keyComment = &in[i], nil
		nv, err := w.value(v, prefix, pathHit, comments)
		if err != nil {
			return nil, err
		}
		in[i] = nv
		if !isComment && w.r.trackComments {
			comments[len(comments)-1] = nil
		}
	}
	return in, nil
}

func (w *walker) branch(in TreeBranch, prefix string, pathHit bool, comments [][]string) (TreeBranch, error) {
	if w.r.trackComments {
		comments = append(comments[:len(comments):len(comments)], nil)
	}
	for i, item := range in {
		if c, ok := item.Key.(Comment); ok {
			if w.r.trackComments {
				comments[len(comments)-1] = append(comments[len(comments)-1], c.Value)
			}
			w.slot, w.keyComment = &in[i].Key, &c
			out, err := w.leaf(c, commentAAD(prefix), w.r.shouldEncrypt(pathHit, comments, true))
			if err != nil {
				return nil, err
			}
			switch out := out.(type) {
			case Comment:
				out.Inline = c.Inline
				in[i].Key = out
			case string:
				in[i].Key = Comment{Value: out, Inline: c.Inline}
			default:
				return nil, fmt.Errorf("comment became %T", out)
			}
			continue
		}
		c, valueIsComment := item.Value.(Comment)
		if valueIsComment && w.r.trackComments {
			comments[len(comments)-1] = append(comments[len(comments)-1], c.Value)
		}
		key, ok := item.Key.(string)
		if !ok {
			return nil, fmt.Errorf("tree contains a non-string key (type %T) under %s; only string keys are supported", item.Key, displayPath(prefix))
		}
		hit := pathHit || (w.r.hasPathRule && w.r.keyHits(key))
		w.slot, w.keyComment = &in[i].Value, nil
		nv, err := w.value(item.Value, prefix+key+":", hit, comments)
		if err != nil {
			return nil, err
		}
		in[i].Value = nv
		if !valueIsComment && w.r.trackComments {
			comments[len(comments)-1] = nil
		}
	}
	return in, nil
}

// displayPath turns an AAD prefix "a:b:" into ["a"]["b"] for messages.
func displayPath(prefix string) string {
	if prefix == "" || prefix == ":" {
		return "the top level"
	}
	parts := strings.Split(strings.TrimSuffix(prefix, ":"), ":")
	var sb strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&sb, "[%q]", p)
	}
	return sb.String()
}

func (t *Tree) walk(leaf leafFunc) error {
	r, err := compileRules(&t.Metadata)
	if err != nil {
		return err
	}
	return t.walkWith(&walker{r: r, leaf: leaf})
}

func (t *Tree) walkWith(w *walker) error {
	for i, b := range t.Branches {
		nb, err := w.branch(b, "", false, nil)
		if err != nil {
			return err
		}
		t.Branches[i] = nb
	}
	return nil
}

func newMAC(m *Metadata) hash.Hash {
	h := sha512.New()
	if m.MACOnlyEncrypted {
		h.Write(macOnlyEncryptedInit)
	}
	return h
}

func macHex(h hash.Hash) string {
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// Encrypt encrypts the tree's values in place following its metadata's
// selection rules, computes the MAC, and sets lastmodified, mac and version.
// The key groups in the metadata are not touched.
func (t *Tree) Encrypt(c *Cipher) error {
	return t.EncryptAt(c, time.Now())
}

// EncryptAt is Encrypt with a given modification time.
func (t *Tree) EncryptAt(c *Cipher, now time.Time) error {
	h := newMAC(&t.Metadata)
	var unencCom *regexp.Regexp
	if t.Metadata.UnencryptedCommentRegex != "" {
		unencCom, _ = regexp.Compile(t.Metadata.UnencryptedCommentRegex)
	}
	err := t.walk(func(v any, aad string, encrypted bool) (any, error) {
		_, isComment := v.(Comment)
		if !isComment && (!t.Metadata.MACOnlyEncrypted || encrypted) {
			b, _, err := ValueBytes(v)
			if err != nil {
				return nil, err
			}
			h.Write(b)
		}
		if !encrypted {
			return v, nil
		}
		out, err := c.Encrypt(v, aad)
		if err != nil {
			return nil, fmt.Errorf("could not encrypt value at %s: %v", displayPath(aad), err)
		}
		if isComment && unencCom != nil && unencCom.MatchString(out) {
			return nil, errors.New("an encrypted comment matches unencrypted_comment_regex; choose a regex that cannot match ENC[...]")
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	t.Metadata.LastModified = now.UTC().Truncate(time.Second)
	mac, err := c.Encrypt(macHex(h), t.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return err
	}
	t.Metadata.MAC = mac
	t.Metadata.Version = FormatVersion
	return nil
}

// DecryptOptions tunes Decrypt.
type DecryptOptions struct {
	// IgnoreMAC skips the MAC check (values still must authenticate).
	IgnoreMAC bool
}

// Decrypt decrypts the tree's values in place and checks the MAC. On error
// the tree is left partly decrypted and must be discarded.
func (t *Tree) Decrypt(c *Cipher, opts DecryptOptions) error {
	mac, err := t.DecryptValues(c)
	if err != nil {
		return err
	}
	if opts.IgnoreMAC {
		return nil
	}
	return t.CheckMAC(c, mac)
}

// parallelMin is the number of encrypted values from which DecryptLeaves
// decrypts on several cores.
const parallelMin = 256

// A Leaf is one value of a document, in document order, for decrypting
// without a tree (see DecryptLeaves).
type Leaf struct {
	// AAD is the value's key path as authenticated data: "a:b:" for the
	// value of b in a (list indices are not part of it), ":" for comments
	// at the top level.
	AAD string
	// Encrypted says whether the selection rules cover the value.
	Encrypted bool
	// Value is the value as loaded (a string ENC[...] when encrypted; a
	// Comment for comments), replaced by its plaintext by DecryptLeaves.
	Value any

	// Where Tree.DecryptValues found the value, to put the plaintext back.
	slot       *any
	keyComment *Comment
}

// DecryptValues decrypts the values and returns the recomputed MAC, without
// checking it.
func (t *Tree) DecryptValues(c *Cipher) (string, error) {
	r, err := compileRules(&t.Metadata)
	if err != nil {
		return "", err
	}
	// One walk collects the leaves and where they are; the plaintexts are
	// put there afterwards.
	leaves := make([]Leaf, 0, t.leafCount())
	w := &walker{r: r}
	w.leaf = func(v any, aad string, encrypted bool) (any, error) {
		leaves = append(leaves, Leaf{AAD: aad, Encrypted: encrypted, Value: v, slot: w.slot, keyComment: w.keyComment})
		return v, nil
	}
	if err := t.walkWith(w); err != nil {
		return "", err
	}
	mac, err := DecryptLeaves(c, &t.Metadata, leaves)
	if err != nil {
		return "", err
	}
	for _, l := range leaves {
		v := l.Value
		if kc := l.keyComment; kc != nil {
			// A comment that is a mapping key stays a Comment, inline or not.
			switch out := v.(type) {
			case Comment:
				out.Inline = kc.Inline
				v = out
			case string:
				v = Comment{Value: out, Inline: kc.Inline}
			default:
				return "", fmt.Errorf("comment became %T", out)
			}
		}
		*l.slot = v
	}
	return mac, nil
}

// leafCount counts the tree's leaves (comments included), to size the
// list DecryptValues collects.
func (t *Tree) leafCount() int {
	var count func(v any) int
	count = func(v any) int {
		switch v := v.(type) {
		case TreeBranch:
			n := 0
			for _, it := range v {
				if _, ok := it.Key.(Comment); ok {
					n++
					continue
				}
				n += count(it.Value)
			}
			return n
		case []any:
			n := 0
			for _, x := range v {
				n += count(x)
			}
			return n
		}
		return 1
	}
	n := 0
	for _, b := range t.Branches {
		n += count(b)
	}
	return n
}

// DecryptLeaves decrypts the encrypted leaves of a document in place and
// returns the MAC recomputed over them, in order, without checking it: the
// work of Tree.DecryptValues for stores that do not build a tree. With many
// values it decrypts on all cores; errors are still those of the first bad
// value in order.
func DecryptLeaves(c *Cipher, m *Metadata, leaves []Leaf) (string, error) {
	// The parallel pass: workers decrypt chunks of leaves, in order of
	// chunks, while the loop below hashes the chunks already done. With IV
	// reuse, the opened values are kept to be remembered in order below;
	// without, plaintexts go straight into the leaves and state marks them
	// (1: decrypted, 2: failed, decrypted again below for its error).
	var results []opened
	var state []uint8
	var done []chan struct{}
	const chunk = 512
	if workers := min(runtime.GOMAXPROCS(0), 8); workers > 1 && len(leaves) >= parallelMin {
		if c.stash != nil {
			results = make([]opened, len(leaves))
		} else {
			state = make([]uint8, len(leaves))
		}
		done = make([]chan struct{}, (len(leaves)+chunk-1)/chunk)
		for i := range done {
			done[i] = make(chan struct{})
		}
		var next atomic.Int64
		for range min(workers, len(done)) {
			go func() {
				var ob openBuf
				for {
					ci := int(next.Add(1) - 1)
					if ci >= len(done) {
						return
					}
					for i := ci * chunk; i < min((ci+1)*chunk, len(leaves)); i++ {
						l := &leaves[i]
						if !l.Encrypted {
							continue
						}
						var s string
						switch v := l.Value.(type) {
						case string:
							s = v
						case Comment:
							s = v.Value
						default:
							continue
						}
						var r opened
						if s == "" {
							r.v = ""
						} else {
							r = c.open(s, l.AAD, &ob)
						}
						switch {
						case results != nil:
							results[i] = r
						case r.err != nil:
							state[i] = 2
						default:
							l.Value, state[i] = r.v, 1
						}
					}
					close(done[ci])
				}
			}()
		}
		// Every chunk is waited for, also when an error returns early, so
		// that no worker outlives the call.
		defer func() {
			for _, d := range done {
				<-d
			}
		}()
	}
	decrypt := func(i int, s string) (any, error) {
		if results == nil {
			return c.Decrypt(s, leaves[i].AAD)
		}
		r := &results[i]
		if r.err != nil {
			return nil, r.err
		}
		c.remember(r, leaves[i].AAD)
		return r.v, nil
	}
	h := newMAC(m)
	for i := range leaves {
		if done != nil && i%chunk == 0 {
			<-done[i/chunk]
		}
		l := &leaves[i]
		out := l.Value
		if l.Encrypted && (state == nil || state[i] != 1) {
			switch in := l.Value.(type) {
			case Comment:
				d, err := decrypt(i, in.Value)
				if err != nil {
					// A plain comment, as older SOPS versions wrote them.
					d = in
				}
				out = d
			case string:
				d, err := decrypt(i, in)
				if err != nil {
					return "", &ValueError{Path: displayPath(l.AAD), Err: err}
				}
				out = d
			default:
				return "", &ValueError{Path: displayPath(l.AAD), Err: ErrNotEncryptedValue}
			}
		}
		if _, isComment := out.(Comment); !isComment && (!m.MACOnlyEncrypted || l.Encrypted) {
			if s, ok := out.(string); ok {
				h.Write(bytesOf(s)) // Write does not keep or change its argument
			} else {
				b, _, err := ValueBytes(out)
				if err != nil {
					return "", err
				}
				h.Write(b)
			}
		}
		l.Value = out
	}
	return macHex(h), nil
}

// CheckMAC decrypts the stored MAC and compares it with mac.
func (t *Tree) CheckMAC(c *Cipher, mac string) error {
	stored, err := c.Decrypt(t.Metadata.MAC, t.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return ErrMACDecrypt
	}
	s, ok := stored.(string)
	if !ok || subtle.ConstantTimeCompare([]byte(s), []byte(mac)) != 1 {
		return ErrMACMismatch
	}
	return nil
}
