package artifact

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Read returns the stored artifact at a relative path (as Stored.Path),
// refusing one larger than max bytes (ErrTooLarge) and paths that leave
// the store.
func (s *Store) Read(rel string, max int64) ([]byte, error) {
	clean := filepath.Clean(filepath.FromSlash(rel))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("artifact path %q leaves the store", rel)
	}
	f, err := os.Open(filepath.Join(s.root, clean))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: artifact %q is larger than %s", ErrTooLarge, rel, FormatSize(max))
	}
	return data, nil
}
