package source

import (
	"bytes"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/lacre/lacre/internal/artifact"
)

// objectOverhead is what one object costs the in-memory store beyond its
// content, so a pack of millions of empty objects is bounded as well.
const objectOverhead = 256

// boundedStorage is go-git's in-memory storage that receives a fetched
// pack whole (as a storer.PackfileWriter) and measures it before inflating
// anything into memory: the pack itself and the declared inflated sizes of
// its objects (a delta counts its own data and its result) may not exceed
// lim.MaxTotalSize bytes, nor one object lim.MaxFileSize. A highly compressible repository (a few KB of pack
// holding GBs of zeros) is refused from the object headers.
//
// Every byte it holds is charged to the lease first (the pack as it
// arrives, then the inflated objects): when the budget is spent, the fetch
// stops with artifact.ErrBudget and starved is set. The sizes count in sp,
// shared by the repositories of one checkout (its submodules), so all
// their packs together, and all their objects, stay within the limits.
type boundedStorage struct {
	*memory.Storage
	lim     artifact.Limits
	sp      *spend
	starved bool
}

// spend is what one checkout, with its submodules, has used so far: its
// packs, their inflated objects, its files and their bytes, each bounded
// by the checkout's limits (CheckoutWorst), all charged to lease.
type spend struct {
	lease                     *artifact.Lease
	pack, inflated, fileBytes int64
	files, modules            int
}

// grow charges n bytes to the lease.
func (s *boundedStorage) grow(n int64) error {
	if err := s.sp.lease.Grow(n); err != nil {
		s.starved = true
		return err
	}
	return nil
}

// PackfileWriter implements storer.PackfileWriter.
func (s *boundedStorage) PackfileWriter() (io.WriteCloser, error) {
	return &packBuffer{s: s}, nil
}

type packBuffer struct {
	s      *boundedStorage
	buf    bytes.Buffer
	failed bool // a Write failed: go-git still calls Close
}

func (p *packBuffer) Write(b []byte) (int, error) {
	if p.s.sp.pack+int64(p.buf.Len()+len(b)) > p.s.lim.MaxTotalSize {
		p.failed = true
		return 0, fmt.Errorf("%w: the fetched pack exceeds %s", artifact.ErrTooLarge, artifact.FormatSize(p.s.lim.MaxTotalSize))
	}
	if err := p.s.grow(int64(len(b))); err != nil {
		p.failed = true
		return 0, err
	}
	return p.buf.Write(b)
}

func (p *packBuffer) Close() error {
	data := p.buf.Bytes()
	if len(data) == 0 || p.failed {
		return nil
	}
	p.s.sp.pack += int64(len(data))
	inflated, err := measurePack(data, p.s.lim, p.s.sp.inflated)
	if err != nil {
		return err
	}
	if err := p.s.grow(inflated); err != nil {
		return err
	}
	p.s.sp.inflated += inflated
	return packfile.UpdateObjectStorage(p.s.Storage, bytes.NewReader(data))
}

// measurePack sums the declared inflated sizes of a pack's objects (with
// objectOverhead each) and fails once one exceeds lim.MaxFileSize or all,
// with the before bytes already inflated, exceed lim.MaxTotalSize.
// Only delta data is inflated (to a small buffer: the result size is in
// its first bytes); other contents are skipped.
func measurePack(data []byte, lim artifact.Limits, before int64) (int64, error) {
	sc := packfile.NewScanner(bytes.NewReader(data))
	_, count, err := sc.Header()
	if err != nil {
		return 0, err
	}
	var total int64
	add := func(size int64) error {
		if size < 0 || size > lim.MaxFileSize {
			return fmt.Errorf("%w: the checkout holds an object of %d bytes, more than %s", artifact.ErrTooLarge, size, artifact.FormatSize(lim.MaxFileSize))
		}
		if total += size + objectOverhead; before+total > lim.MaxTotalSize {
			return fmt.Errorf("%w: checkout exceeds %s (its objects inflate to more than that)", artifact.ErrTooLarge, artifact.FormatSize(lim.MaxTotalSize))
		}
		return nil
	}
	for i := uint32(0); i < count; i++ {
		oh, err := sc.NextObjectHeader()
		if err != nil {
			return 0, err
		}
		if err := add(oh.Length); err != nil {
			return 0, err
		}
		if oh.Type != plumbing.OFSDeltaObject && oh.Type != plumbing.REFDeltaObject {
			continue // the next header skips the content, inflating to io.Discard
		}
		var head deltaHead
		if _, _, err := sc.NextObject(&head); err != nil {
			return 0, err
		}
		if err := add(head.targetSize()); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// deltaHead keeps the first bytes of a delta: two varints, the source and
// the target size.
type deltaHead struct {
	b []byte
}

func (d *deltaHead) Write(p []byte) (int, error) {
	if n := 20 - len(d.b); n > 0 {
		d.b = append(d.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (d *deltaHead) targetSize() int64 {
	b := d.b
	for i := 0; i < 2; i++ {
		var sz uint64
		var shift uint
		for len(b) > 0 {
			c := b[0]
			b = b[1:]
			sz |= uint64(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 {
				break
			}
		}
		if i == 1 {
			if sz > 1<<62 {
				return 1 << 62
			}
			return int64(sz)
		}
	}
	return 0
}
