package keys

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

type countingIdentity struct {
	calls int
	key   []byte
}

func (c *countingIdentity) Unwrap(_ context.Context, s *Stanza) ([]byte, error) {
	c.calls++
	if s.Enc != "mine" || c.key == nil {
		return nil, ErrIncorrectIdentity
	}
	return c.key, nil
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	inner := &countingIdentity{key: []byte("k")}
	c := &Cache{TTL: time.Hour, MaxSize: 2}
	unwraps := 0
	ids := c.Wrap("tenant-a", []Identity{inner}, func(string) { unwraps++ })
	s := &Stanza{Type: TypeAge, Enc: "mine"}
	for i := 0; i < 3; i++ {
		got, err := ids[0].Unwrap(ctx, s)
		if err != nil || !bytes.Equal(got, []byte("k")) {
			t.Fatal(err)
		}
	}
	if inner.calls != 1 || unwraps != 1 {
		t.Fatalf("inner called %d times, counted %d", inner.calls, unwraps)
	}
	// Another scope does not see tenant a's key.
	other := c.Wrap("tenant-b", []Identity{&countingIdentity{}}, nil)
	if _, err := other[0].Unwrap(ctx, s); !errors.Is(err, ErrIncorrectIdentity) {
		t.Fatalf("tenant b got a cached key: %v", err)
	}
	// Failures are not cached; the size bound holds.
	if _, err := ids[0].Unwrap(ctx, &Stanza{Type: TypeAge, Enc: "other"}); err == nil {
		t.Fatal("unwrapped a foreign stanza")
	}
	for _, e := range []string{"a", "b", "c"} {
		c.put(c.key("x", &Stanza{Enc: e}), []byte(e))
	}
	if c.Len() != 2 {
		t.Fatalf("cache holds %d entries, bound is 2", c.Len())
	}
	// Expiry.
	c2 := &Cache{TTL: time.Nanosecond}
	ids2 := c2.Wrap("s", []Identity{inner}, nil)
	ids2[0].Unwrap(ctx, s)
	time.Sleep(time.Millisecond)
	before := inner.calls
	ids2[0].Unwrap(ctx, s)
	if inner.calls != before+1 {
		t.Fatal("expired entry was used")
	}
}
