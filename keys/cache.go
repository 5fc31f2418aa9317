package keys

import (
	"container/list"
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// A Cache remembers unwrapped data keys, so an unchanged file costs no KMS,
// Vault, age or PGP operation. Entries are keyed by a scope (the identity
// set, e.g. a decryption Secret's UID and resourceVersion) and the stanza's
// wrapped key: a tenant never gets a key it could not unwrap itself.
type Cache struct {
	TTL     time.Duration // default 1h
	MaxSize int           // default 10,000 entries

	mu    sync.Mutex
	ll    *list.List
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	k       [32]byte
	v       []byte
	expires time.Time
}

func (c *Cache) key(scope string, s *Stanza) [32]byte {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(s.Type))
	h.Write([]byte{0})
	h.Write([]byte(s.Enc))
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (c *Cache) get(k [32]byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		return nil, false
	}
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	ent := e.Value.(*cacheEntry)
	if time.Now().After(ent.expires) {
		c.ll.Remove(e)
		delete(c.items, k)
		return nil, false
	}
	c.ll.MoveToFront(e)
	return append([]byte(nil), ent.v...), true
}

func (c *Cache) put(k [32]byte, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[[32]byte]*list.Element{}
		c.ll = list.New()
	}
	ttl, max := c.TTL, c.MaxSize
	if ttl == 0 {
		ttl = time.Hour
	}
	if max == 0 {
		max = 10000
	}
	if e, ok := c.items[k]; ok {
		c.ll.Remove(e)
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{k: k, v: append([]byte(nil), v...), expires: time.Now().Add(ttl)})
	for c.ll.Len() > max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).k)
	}
}

// Len returns the number of cached keys.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ll == nil {
		return 0
	}
	return c.ll.Len()
}

// Wrap returns identities that consult the cache first, within scope.
// onUnwrap, when set, is called for every real unwrap with the stanza type.
func (c *Cache) Wrap(scope string, ids []Identity, onUnwrap func(typ string)) []Identity {
	out := make([]Identity, len(ids))
	for i, id := range ids {
		out[i] = &cachedIdentity{c: c, scope: scope, id: id, onUnwrap: onUnwrap}
	}
	return out
}

type cachedIdentity struct {
	c        *Cache
	scope    string
	id       Identity
	onUnwrap func(string)
}

func (ci *cachedIdentity) Describe() string { return Describe(ci.id) }

func (ci *cachedIdentity) Unwrap(ctx context.Context, s *Stanza) ([]byte, error) {
	if t, ok := ci.id.(Typed); ok && t.StanzaType() != s.Type {
		return nil, ErrIncorrectIdentity
	}
	k := ci.c.key(ci.scope, s)
	if v, ok := ci.c.get(k); ok {
		return v, nil
	}
	if ci.onUnwrap != nil {
		ci.onUnwrap(s.Type)
	}
	v, err := ci.id.Unwrap(ctx, s)
	if err != nil {
		return nil, err
	}
	ci.c.put(k, v)
	return v, nil
}
