package source

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/internal/testsupport"
)

// shared names one content at n paths.
func shared(n int, content string) map[string]string {
	files := map[string]string{}
	for i := 0; i < n; i++ {
		files[fmt.Sprintf("f%02d", i)] = content
	}
	return files
}

// TestCheckoutSizeBounds: a small repository of highly compressible files
// over the checkout's limits fails with artifact.ErrTooLarge, and the
// checkout allocates far less than the content it refuses (the limits are
// checked from the pack's object headers and the tree's entries, before
// any content is held).
func TestCheckoutSizeBounds(t *testing.T) {
	const mib = 1 << 20
	zeros := func(n int, tail string) string { return strings.Repeat("\x00", n) + tail }
	srv := gittest.New(t, "", "")
	lim := artifact.Limits{MaxTotalSize: 16 * mib}
	for _, tc := range []struct {
		name     string
		files    map[string]string
		lim      artifact.Limits
		want     string
		maxAlloc uint64
	}{
		// 32 MiB of distinct blobs: refused from the pack's object headers.
		{"blobs", map[string]string{"a": zeros(8*mib, "a"), "b": zeros(8*mib, "b"), "c": zeros(8*mib, "c"), "d": zeros(8*mib, "d")}, lim, "checkout exceeds 16 MiB", 4 * mib},
		// One 1 MiB blob at 64 paths: the pack is within the limit, the
		// tree is not; refused before a file is copied.
		{"shared", shared(64, zeros(mib, "")), lim, "checkout exceeds 16 MiB (at", 16 * mib},
		{"one file", map[string]string{"big": zeros(32*mib, "")}, artifact.Limits{MaxFileSize: 4 * mib, MaxTotalSize: 64 * mib}, "object of 33554432 bytes, more than 4 MiB", 4 * mib},
		{"files", map[string]string{"a": "a", "b": "b", "c": "c", "d": "d"}, artifact.Limits{MaxFiles: 3}, "more than 3 files", 4 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := srv.NewRepo(strings.ReplaceAll(tc.name, " ", "-"), "main")
			repo.Commit("big", tc.files)
			var err error
			n := testsupport.Allocated(func() {
				_, err = Checkout(context.Background(), repo.URL(), Ref{Branch: "main"}, nil, tc.lim)
			})
			if !errors.Is(err, artifact.ErrTooLarge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want ErrTooLarge %q, got %v", tc.want, err)
			}
			if n > tc.maxAlloc {
				t.Fatalf("checkout allocated %d MiB before refusing (bound %d MiB)", n/mib, tc.maxAlloc/mib)
			}
			t.Logf("%v; allocated %d KiB", err, n>>10)
		})
	}
	// Within the limits, the same files check out.
	repo := srv.NewRepo("fits", "main")
	repo.Commit("fits", map[string]string{"a": zeros(4*mib, ""), "b": "b"})
	c, err := Checkout(context.Background(), repo.URL(), Ref{Branch: "main"}, nil, lim)
	if err != nil || len(c.Files["a"].Data) != 4*mib {
		t.Fatalf("checkout within the limits: %v", err)
	}
}

// TestCheckoutBudget: six repositories of incompressible content checked
// out at once through one budget that holds about two checkouts all come
// out whole: a checkout that finds the budget spent drops what it held,
// waits and runs again; the budget's accounting never exceeds its size,
// each checkout is charged at least its pack, objects and files, and
// every byte is released.
func TestCheckoutBudget(t *testing.T) {
	const n, size = 6, 128 << 10
	srv := gittest.New(t, "", "")
	var repos []*gittest.Repo
	for i := 0; i < n; i++ {
		data := make([]byte, size)
		rand.Read(data)
		repo := srv.NewRepo(fmt.Sprintf("r%d", i), "main")
		repo.Commit("random", map[string]string{"data": string(data)})
		repos = append(repos, repo)
	}
	b := artifact.NewBudget(7 * size)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, repo := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var charged int64
			release, err := b.Within(context.Background(), CheckoutWorst(artifact.Limits{}), func(l *artifact.Lease) error {
				c, err := CheckoutCharging(context.Background(), repo.URL(), Ref{Branch: "main"}, nil, artifact.Limits{}, l)
				if err == nil && len(c.Files["data"].Data) != size {
					err = fmt.Errorf("%s: %d bytes", repo.Name, len(c.Files["data"].Data))
				}
				charged = l.Held()
				return err
			})
			release()
			if err == nil && charged < 3*size {
				err = fmt.Errorf("%s charged %d bytes for a %d-byte file", repo.Name, charged, size)
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
	t.Logf("peak %d KiB of %d KiB, %d checkouts waited", b.Peak()>>10, b.Size()>>10, b.Retries())
	if b.Peak() > b.Size() || b.Used() != 0 {
		t.Fatalf("peak %d, used %d, budget %d", b.Peak(), b.Used(), b.Size())
	}
}
