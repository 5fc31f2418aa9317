// Package testsupport owns the small helpers that tests of several
// packages share and that belong to no fixture of their own (the control
// plane is internal/testcluster's, the Git server internal/gittest's):
// a goroutine-safe buffer for logs and command output, Allocated, and
// RequestCounter (API requests by class, for tests and bench/scale).
package testsupport

import (
	"runtime"
	"strings"
	"sync"
)

// SyncBuffer is a goroutine-safe log and output sink.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Allocated returns the bytes fn allocates (runtime.MemStats.TotalAlloc,
// after a GC): a bound on the memory a refusal spends.
func Allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
