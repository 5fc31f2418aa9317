package artifact

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// TestBudgetWaitsForRoom: a run that cannot grow while another holds the
// budget drops what it held, waits (Waiting counts it) and, once the
// other releases, runs again and succeeds; the budget's accounting never
// goes over its size; a run larger than the budget runs alone; a wait
// ends with its context.
func TestBudgetWaitsForRoom(t *testing.T) {
	b := NewBudget(100)
	releaseA, err := b.Within(context.Background(), 100, func(l *Lease) error { return l.Grow(80) })
	if err != nil || b.Used() != 80 {
		t.Fatalf("a: %v, used %d", err, b.Used())
	}
	var runs int
	done := make(chan error)
	go func() {
		release, err := b.Within(context.Background(), 50, func(l *Lease) error {
			runs++
			if err := l.Grow(30); err != nil {
				return err
			}
			return l.Grow(20)
		})
		if err == nil && b.Used() > b.Size() {
			err = fmt.Errorf("used %d of %d", b.Used(), b.Size())
		}
		release()
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for b.Waiting() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("b never waited for room")
		}
		time.Sleep(time.Millisecond) // polling for the state, not timing it
	}
	if b.Used() != 80 {
		t.Fatalf("b waits holding bytes: used %d", b.Used())
	}
	releaseA()
	releaseA() // a second release is a no-op
	if err := <-done; err != nil || runs != 2 {
		t.Fatalf("b: %v after %d runs", err, runs)
	}
	if b.Used() != 0 || b.Peak() > b.Size() || b.Retries() != 1 {
		t.Fatalf("used %d, peak %d of %d, retries %d", b.Used(), b.Peak(), b.Size(), b.Retries())
	}

	// Larger than the whole budget: charged all of it, runs alone.
	release, err := b.Within(context.Background(), 1000, func(l *Lease) error { return l.Grow(1000) })
	if err != nil || b.Used() != 100 {
		t.Fatalf("oversized: %v, used %d", err, b.Used())
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for b.Waiting() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := b.Within(ctx, 10, func(l *Lease) error { return l.Grow(10) }); !errors.Is(err, context.Canceled) {
		t.Fatalf("a wait past its context: %v", err)
	}
	release()
	if b.Used() != 0 {
		t.Fatalf("used %d after every release", b.Used())
	}

	var nilBudget *Budget
	if _, err := nilBudget.Within(context.Background(), 1, func(l *Lease) error { return l.Grow(1 << 40) }); err != nil {
		t.Fatalf("a nil budget bounds nothing: %v", err)
	}
}

// TestFetcherBudget: eight different artifacts fetched at once through a
// budget that holds about two of them at a time all arrive whole, with
// the budget's accounting never over its size and every byte released.
func TestFetcherBudget(t *testing.T) {
	s, err := NewStore(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	s.SetBaseURL(srv.URL)
	const n, size = 8, 256 << 10
	var stored []Stored
	for i := 0; i < n; i++ {
		data := make([]byte, size)
		rand.Read(data) // incompressible: the archive is as large as the file
		tgz, err := Build(fstest.MapFS{"f": {Data: data}}, nil, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Put("GitRepository", "ns", fmt.Sprintf("r%d", i), tgz)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, st)
	}
	b := NewBudget(4 * size) // an archive and its file, twice
	f := &Fetcher{Budget: b}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, st := range stored {
		wg.Add(1)
		go func() {
			defer wg.Done()
			files, err := f.Fetch(context.Background(), st.URL, st.Digest)
			if err == nil && len(files["f"]) != size {
				err = fmt.Errorf("%s: %d bytes", st.Path, len(files["f"]))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("peak %d KiB of %d KiB, %d runs waited", b.Peak()>>10, b.Size()>>10, b.Retries())
	if b.Peak() > b.Size() || b.Peak() < 2*size || b.Used() != 0 {
		t.Fatalf("peak %d, used %d, budget %d", b.Peak(), b.Used(), b.Size())
	}
}
