package sops

import (
	"crypto/subtle"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

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

// decryptChunk is the number of leaves a worker of the parallel pass
// decrypts at a time.
const decryptChunk = 512

// parallelPass is DecryptLeaves's parallel pass: workers decrypt chunks of
// leaves, in order of chunks, while DecryptLeaves hashes the chunks already
// done. With IV reuse, the opened values are kept in results to be
// remembered in order; without, plaintexts go straight into the leaves and
// state marks them (1: decrypted, 2: failed, decrypted again in order for
// its error). done is nil when the leaves are decrypted in order only.
type parallelPass struct {
	results []opened
	state   []uint8
	done    []chan struct{}
}

// start starts the workers, with enough cores and values.
func (p *parallelPass) start(c *Cipher, leaves []Leaf) {
	workers := min(runtime.GOMAXPROCS(0), 8)
	if workers <= 1 || len(leaves) < parallelMin {
		return
	}
	if c.stash != nil {
		p.results = make([]opened, len(leaves))
	} else {
		p.state = make([]uint8, len(leaves))
	}
	p.done = make([]chan struct{}, (len(leaves)+decryptChunk-1)/decryptChunk)
	for i := range p.done {
		p.done[i] = make(chan struct{})
	}
	next := new(atomic.Int64)
	for range min(workers, len(p.done)) {
		go openChunks(c, leaves, p.results, p.state, p.done, next)
	}
}

// wait waits for every chunk, also when DecryptLeaves returns early, so
// that no worker outlives the call.
func (p *parallelPass) wait() {
	for _, d := range p.done {
		<-d
	}
}

// openChunks is a worker of the parallel pass.
func openChunks(c *Cipher, leaves []Leaf, results []opened, state []uint8, done []chan struct{}, next *atomic.Int64) {
	var ob openBuf
	for {
		ci := int(next.Add(1) - 1)
		if ci >= len(done) {
			return
		}
		for i := ci * decryptChunk; i < min((ci+1)*decryptChunk, len(leaves)); i++ {
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
}

// DecryptLeaves decrypts the encrypted leaves of a document in place and
// returns the MAC recomputed over them, in order, without checking it: the
// work of Tree.DecryptValues for stores that do not build a tree. With many
// values it decrypts on all cores; errors are still those of the first bad
// value in order.
func DecryptLeaves(c *Cipher, m *Metadata, leaves []Leaf) (string, error) {
	var p parallelPass
	p.start(c, leaves)
	defer p.wait()
	results, state, done := p.results, p.state, p.done
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
		if done != nil && i%decryptChunk == 0 {
			<-done[i/decryptChunk]
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
