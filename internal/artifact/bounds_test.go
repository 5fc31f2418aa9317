package artifact

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lacre/lacre/internal/testsupport"
)

const mib = 1 << 20

// zeroTree is n files of size zeros each (one shared slice: the test holds
// size bytes, the tree declares n × size).
func zeroTree(n, size int) fstest.MapFS {
	data := make([]byte, size)
	fsys := fstest.MapFS{}
	for i := 0; i < n; i++ {
		fsys[fmt.Sprintf("z%02d.yaml", i)] = &fstest.MapFile{Data: data}
	}
	return fsys
}

// TestDefaultTotalBounds: twelve 30 MB files of zeros (each under the
// per-file limit, 360 MB in all) are refused by the default limits, when
// packaged and when unpacked (an archive of under a megabyte), before the
// content is held: the refusal allocates a small fraction of it.
func TestDefaultTotalBounds(t *testing.T) {
	var err error
	if n := testsupport.Allocated(func() { _, err = Build(zeroTree(12, 30e6), nil, Limits{}) }); !errors.Is(err, ErrTooLarge) || n > 64*mib {
		t.Fatalf("build: %v, allocated %d MiB", err, n/mib)
	}
	zeros := make([]byte, 30e6)
	data := rawTarGz(t, func(tw *tar.Writer) {
		for i := 0; i < 12; i++ {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("z%02d.yaml", i), Size: int64(len(zeros)), Mode: 0o600})
			tw.Write(zeros)
		}
	})
	t.Logf("archive: %d KiB", len(data)>>10)
	n := testsupport.Allocated(func() { _, err = Extract(data, Limits{}) })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "unpacked artifact exceeds 256 MiB") {
		t.Fatalf("extract: %v", err)
	}
	if n > 16*mib {
		t.Fatalf("extract allocated %d MiB before refusing 360 MB", n/mib)
	}
	// More files than allowed, each empty: refused from the headers too.
	data = rawTarGz(t, func(tw *tar.Writer) {
		for i := 0; i < 20; i++ {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f%02d", i), Mode: 0o600})
		}
	})
	if _, err := Extract(data, Limits{MaxFiles: 10}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 10 files") {
		t.Fatalf("files: %v", err)
	}
}

// TestFetcherCacheBytes: the fetcher keeps unpacked artifacts up to
// CacheSize bytes, evicting the oldest; an artifact larger than the cache
// is returned but not kept.
func TestFetcherCacheBytes(t *testing.T) {
	s, err := NewStore(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	s.SetBaseURL(srv.URL)
	put := func(name string, size int) *Stored {
		data, err := Build(fstest.MapFS{"f": {Data: bytes.Repeat([]byte(name), size/len(name))}}, nil, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Put("GitRepository", "ns", name, data)
		if err != nil {
			t.Fatal(err)
		}
		return &st
	}
	a, b, c, big := put("a", mib), put("b", mib), put("c", mib), put("big", 3*mib)
	f := &Fetcher{CacheSize: 2*mib + 1024}
	for _, st := range []*Stored{a, b, c} {
		if _, err := f.Fetch(context.Background(), st.URL, st.Digest); err != nil {
			t.Fatal(err)
		}
	}
	cached := func(st *Stored) bool { _, ok := f.Cached(st.Digest); return ok }
	if cached(a) || !cached(b) || !cached(c) {
		t.Fatalf("cache of 2 MiB after three 1 MiB artifacts: a %v b %v c %v", cached(a), cached(b), cached(c))
	}
	files, err := f.Fetch(context.Background(), big.URL, big.Digest)
	if err != nil || len(files["f"]) != 3*mib {
		t.Fatalf("big: %v", err)
	}
	if cached(big) || !cached(c) {
		t.Fatalf("an artifact larger than the cache was kept (%v) or evicted the others (%v)", cached(big), !cached(c))
	}
}
