package bucket

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing/fstest"

	"golang.org/x/sync/errgroup"

	"github.com/lacre/lacre/internal/artifact"
)

// maxConcurrentFetches bounds the downloads in flight (Flux allows 100;
// the bytes held are bounded by the lease either way).
const maxConcurrentFetches = 16

// FetchWorst is what Fetch and packaging its files may hold at worst: the
// files and their archive.
func FetchWorst(lim artifact.Limits) int64 {
	return 2 * lim.WithDefaults().MaxTotalSize
}

// Fetch downloads the indexed objects (Flux's fetchIndexFiles) as files
// named by their keys, and the root .sourceignore read by Index, as Flux's
// working directory holds it. Each object's size is charged to lease
// before it is read (artifact.ErrBudget when the lease cannot grow) and
// its body is read at most to its stated size. An object gone since the
// listing leaves the index; one whose ETag changed is indexed with the
// new ETag, so the revision is that of what was fetched.
func (c *Client) Fetch(ctx context.Context, x *Index, lim artifact.Limits, lease *artifact.Lease) (fstest.MapFS, error) {
	lim = lim.WithDefaults()
	var mu sync.Mutex // guards lease, files and x
	grow := func(n int64) error {
		mu.Lock()
		defer mu.Unlock()
		return lease.Grow(n)
	}
	files := fstest.MapFS{}
	if x.ignore != nil {
		if err := grow(int64(len(x.ignore))); err != nil {
			return nil, err
		}
		files[IgnoreFile] = &fstest.MapFile{Data: x.ignore, Mode: 0o644}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxConcurrentFetches)
	for _, key := range x.keys() {
		o := x.objects[key]
		g.Go(func() error {
			if err := grow(o.Size); err != nil {
				return err
			}
			data, etag, err := c.get(gctx, key, lim.MaxFileSize, func(size int64) error {
				return grow(size - o.Size) // changed since the listing
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case isNotFound(err):
				delete(x.objects, key) // gone since the listing
				return nil
			case err != nil:
				return fmt.Errorf("failed to get '%s' object: %w", key, err)
			}
			if etag != o.ETag {
				o.ETag = etag
				x.objects[key] = o
			}
			files[cleanKey(key)] = &fstest.MapFile{Data: data, Mode: 0o644}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("fetch from bucket '%s' failed: %w", c.cfg.BucketName, err)
	}
	if err := conflicts(files); err != nil {
		return nil, fmt.Errorf("fetch from bucket '%s' failed: %w", c.cfg.BucketName, err)
	}
	return files, nil
}

// conflicts fails when one object's path is a directory of another's
// ("a" and "a/b"), which no file tree can hold (Flux fails writing them).
func conflicts(files fstest.MapFS) error {
	for name := range files {
		for dir := name; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
			if _, ok := files[dir]; ok {
				return fmt.Errorf("object %q is also a directory of %q", dir, name)
			}
		}
	}
	return nil
}

// readAtMost reads r whole, failing when it holds more than n bytes.
func readAtMost(r io.Reader, n int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(n))
	got, err := io.Copy(&buf, io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if got > n {
		return nil, fmt.Errorf("%w: the object holds more than its stated %d bytes", artifact.ErrTooLarge, n)
	}
	return buf.Bytes(), nil
}
