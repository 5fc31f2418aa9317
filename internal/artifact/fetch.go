package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// ErrNotFound is returned when the artifact server has no such artifact
// (it may have been garbage-collected; retry after the source reconciles).
var ErrNotFound = errors.New("artifact not found")

// DefaultCacheSize is the default Fetcher.CacheSize.
const DefaultCacheSize = 256 << 20

// A Fetcher downloads artifacts, verifies their digests, and keeps the
// unpacked files of recent digests in memory so an unchanged revision is
// neither downloaded nor unpacked again.
type Fetcher struct {
	Client *http.Client
	Limits Limits
	// CacheSize bounds the unpacked bytes (file names and contents) kept
	// in memory, oldest artifacts evicted first (0: DefaultCacheSize). An
	// artifact larger than that is returned but not kept.
	CacheSize int64
	// Budget, when not nil, is charged the downloaded archive and its
	// unpacked files while a fetch holds them (FetchWorst at most); a
	// fetch that finds it spent waits for room. The cache is bounded by
	// CacheSize, outside the budget.
	Budget *Budget

	mu    sync.Mutex
	cache map[string]*cacheEntry
	order []string
}

type cacheEntry struct {
	once  sync.Once
	files Files
	dirs  map[string]bool
	err   error
	size  int64       // bytes of files, set before done
	done  atomic.Bool // set after once ran
}

func filesSize(files Files) int64 {
	var n int64
	for name, data := range files {
		n += int64(len(name) + len(data))
	}
	return n
}

// Dirs returns the directories files imply, by relative name ("" is the
// root). An artifact's own directory entries come from ExtractTree.
func Dirs(files Files) map[string]bool {
	dirs := map[string]bool{"": true}
	for n := range files {
		addParents(dirs, n)
	}
	return dirs
}

// Cached returns the files of an artifact already fetched, without
// fetching.
func (f *Fetcher) Cached(digest string) (Files, bool) {
	f.mu.Lock()
	e, ok := f.cache[digest]
	f.mu.Unlock()
	if !ok {
		return nil, false
	}
	// Only a completed fetch: never wait for one in progress.
	if !e.done.Load() || e.err != nil {
		return nil, false
	}
	return e.files, true
}

// FetchTree is Fetch, with the artifact's directories (as ExtractTree
// returns them). Neither may be modified.
func (f *Fetcher) FetchTree(ctx context.Context, url, digest string) (Files, map[string]bool, error) {
	e, err := f.entry(ctx, url, digest)
	if err != nil {
		return nil, nil, err
	}
	return e.files, e.dirs, nil
}

// Fetch returns the files of the artifact at url with the given digest.
func (f *Fetcher) Fetch(ctx context.Context, url, digest string) (Files, error) {
	e, err := f.entry(ctx, url, digest)
	if err != nil {
		return nil, err
	}
	return e.files, nil
}

func (f *Fetcher) entry(ctx context.Context, url, digest string) (*cacheEntry, error) {
	for {
		f.mu.Lock()
		if f.cache == nil {
			f.cache = map[string]*cacheEntry{}
		}
		e, ok := f.cache[digest]
		if !ok {
			e = &cacheEntry{}
			f.cache[digest] = e
			f.order = append(f.order, digest)
		}
		f.mu.Unlock()
		e.once.Do(func() {
			e.files, e.dirs, e.err = f.fetch(ctx, url, digest)
			if e.err == nil {
				e.size = filesSize(e.files)
				for d := range e.dirs {
					e.size += int64(len(d))
				}
			}
			e.done.Store(true)
			if e.err == nil {
				f.evict(digest, e)
			}
		})
		if e.err == nil {
			return e, nil
		}
		f.mu.Lock()
		if f.cache[digest] == e {
			f.remove(digest)
		}
		f.mu.Unlock()
		// The caller that ran the fetch may have given up (its context
		// ended, waiting for the budget): another one tries again.
		if ctxErr := errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded); ctxErr && ctx.Err() == nil {
			continue
		}
		return nil, e.err
	}
}

// evict makes room for the artifact just fetched: one larger than
// CacheSize is not kept; otherwise the oldest are dropped until the
// completed ones fit.
func (f *Fetcher) evict(digest string, e *cacheEntry) {
	max := f.CacheSize
	if max <= 0 {
		max = DefaultCacheSize
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.size > max {
		if f.cache[digest] == e {
			f.remove(digest)
		}
		return
	}
	var total int64
	for _, d := range f.order {
		if e := f.cache[d]; e.done.Load() {
			total += e.size
		}
	}
	for i := 0; total > max && i < len(f.order); {
		e := f.cache[f.order[i]]
		if !e.done.Load() {
			i++ // in progress: its fetch evicts when done
			continue
		}
		total -= e.size
		f.remove(f.order[i])
	}
}

// remove drops digest from the cache; f.mu is held.
func (f *Fetcher) remove(digest string) {
	delete(f.cache, digest)
	f.order = slices.DeleteFunc(f.order, func(d string) bool { return d == digest })
}

// FetchWorst is the most bytes one fetch under lim charges: the archive
// and its unpacked files, each at most lim.MaxTotalSize.
func FetchWorst(lim Limits) int64 {
	return 2 * lim.WithDefaults().MaxTotalSize
}

func (f *Fetcher) fetch(ctx context.Context, url, digest string) (Files, map[string]bool, error) {
	var files Files
	var dirs map[string]bool
	release, err := f.Budget.Within(ctx, FetchWorst(f.Limits), func(l *Lease) error {
		var err error
		files, dirs, err = f.fetchCharging(ctx, url, digest, l)
		return err
	})
	// The files now belong to the cache (bounded by CacheSize) and to the
	// reconciles that asked for them.
	release()
	return files, dirs, err
}

// chargedReader charges a lease with the bytes read through it.
type chargedReader struct {
	r io.Reader
	l *Lease
}

func (c *chargedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if gerr := c.l.Grow(int64(n)); gerr != nil {
		return 0, gerr
	}
	return n, err
}

// fetchCharging downloads, verifies and unpacks an artifact, charging l
// with the archive as it arrives and the unpacked files (from the
// archive's headers) before they are read.
func (f *Fetcher) fetchCharging(ctx context.Context, url, digest string, l *Lease) (Files, map[string]bool, error) {
	lim := f.Limits.WithDefaults()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching artifact: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil, ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetching artifact: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(&chargedReader{r: io.LimitReader(resp.Body, lim.MaxTotalSize+1), l: l})
	if errors.Is(err, ErrBudget) {
		return nil, nil, err
	} else if err != nil {
		return nil, nil, fmt.Errorf("fetching artifact: %v", err)
	}
	if int64(len(data)) > lim.MaxTotalSize {
		return nil, nil, ErrTooLarge
	}
	if err := Verify(data, digest); err != nil {
		return nil, nil, err
	}
	var unpacked int64
	if err := walkArchive(data, lim, func(_ string, size int64, _ io.Reader) error {
		unpacked += size
		return nil
	}, func(string) {}); err != nil {
		return nil, nil, err
	}
	if err := l.Grow(unpacked); err != nil {
		return nil, nil, err
	}
	return ExtractTree(data, lim)
}
