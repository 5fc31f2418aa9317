package artifact

import (
	"context"
	"errors"
	"io"
	"sync"

	"golang.org/x/sync/semaphore"
)

// ErrBudget is what Lease.Grow returns when the budget is spent: the
// caller drops the bytes it holds and returns it; Budget.Within then
// waits for room and runs the caller again. It never reaches an object's
// status.
var ErrBudget = errors.New("artifact byte budget spent")

// A Budget bounds the bytes that all Git checkouts and artifact unpacks
// of one controller hold at once, whatever --concurrent is. Work charges
// the bytes it is about to hold with Lease.Grow, which never blocks (so
// no two holders wait for each other); work that finds the budget spent
// drops what it holds and waits, respecting its context, for room for
// its worst case, then runs again. One piece of work larger than the
// whole budget is charged the whole budget: it runs alone. A nil
// *Budget bounds nothing.
type Budget struct {
	size int64
	sem  *semaphore.Weighted

	mu                  sync.Mutex
	used, peak, retries int64
	waiting             int
}

// NewBudget returns a budget of size bytes (size > 0).
func NewBudget(size int64) *Budget {
	return &Budget{size: size, sem: semaphore.NewWeighted(size)}
}

// Size is the budget's size in bytes.
func (b *Budget) Size() int64 { return b.size }

// Used is the bytes charged now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak is the most bytes ever charged at once; never more than Size.
func (b *Budget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// Retries counts the runs that found the budget spent and waited.
func (b *Budget) Retries() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.retries
}

// Waiting is how many runs wait for room now.
func (b *Budget) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
}

func (b *Budget) charge(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used += n; b.used > b.peak {
		b.peak = b.used
	}
}

// A Lease is the part of a Budget one run holds. The zero-budget lease
// (from a nil Budget) grants everything.
type Lease struct {
	b          *Budget
	held, used int64 // acquired from b; charged by Grow (used <= held unless held is all of b)
	wanted     int64 // used plus the Grow that failed
}

// Grow charges n more bytes without blocking: from what the lease holds,
// else from the budget; ErrBudget when the budget has no room. A lease
// charged the whole budget grows freely: it runs alone.
func (l *Lease) Grow(n int64) error {
	if l == nil || l.b == nil || n <= 0 {
		return nil
	}
	l.used += n
	if l.used <= l.held || l.held == l.b.size {
		return nil
	}
	extra := min(l.used, l.b.size) - l.held
	if !l.b.sem.TryAcquire(extra) {
		l.wanted = l.used
		l.used -= n
		return ErrBudget
	}
	l.held += extra
	l.b.charge(extra)
	return nil
}

// Held is the bytes the lease holds from the budget.
func (l *Lease) Held() int64 {
	if l == nil {
		return 0
	}
	return l.held
}

func (l *Lease) release() {
	if l.b == nil || l.held == 0 {
		return
	}
	l.b.charge(-l.held)
	l.b.sem.Release(l.held)
	l.held, l.used = 0, 0
}

// Within runs f with a lease of b. When f returns an error wrapping
// ErrBudget (having dropped what it held), Within releases the lease,
// waits, respecting ctx (whose error it then returns), for worst bytes
// (or what f had asked for when more; at most Size) and runs f again
// with those held: f runs at most twice unless worst underestimates it.
// On f's success the lease stays charged until the caller calls release,
// once it no longer holds f's bytes; on an error it is released.
func (b *Budget) Within(ctx context.Context, worst int64, f func(*Lease) error) (release func(), err error) {
	if b == nil {
		return func() {}, f(nil)
	}
	l := &Lease{b: b}
	for {
		err := f(l)
		if !errors.Is(err, ErrBudget) {
			if err != nil {
				l.release()
				return func() {}, err
			}
			var once sync.Once
			return func() { once.Do(l.release) }, nil
		}
		want := min(max(worst, l.wanted), b.size)
		l.release()
		b.mu.Lock()
		b.retries++
		b.waiting++
		b.mu.Unlock()
		err = b.sem.Acquire(ctx, want)
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err != nil {
			return func() {}, err
		}
		b.charge(want)
		l = &Lease{b: b, held: want}
	}
}

// ChargeReader returns a reader that charges l with every byte read
// through r (a nil l charges nothing); once the budget is spent, Read
// returns ErrBudget.
func ChargeReader(r io.Reader, l *Lease) io.Reader {
	if l == nil {
		return r
	}
	return &chargedReader{r: r, l: l}
}
