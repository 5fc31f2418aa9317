package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

func rawTarGz(t *testing.T, write func(tw *tar.Writer)) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	write(tw)
	tw.Flush()
	gz.Close()
	return buf.Bytes()
}

// TestExtractHugeDeclaredSizes: members whose headers declare huge sizes
// are refused from the header, before any data is read.
func TestExtractHugeDeclaredSizes(t *testing.T) {
	for name, size := range map[string]int64{"1 TiB": 1 << 40, "max int64": 1<<63 - 1, "just over": 1<<20 + 1} {
		t.Run(name, func(t *testing.T) {
			data := rawTarGz(t, func(tw *tar.Writer) {
				tw.WriteHeader(&tar.Header{Name: "big.yaml", Typeflag: tar.TypeReg, Size: size, Mode: 0o600})
				tw.Write(make([]byte, 4096)) // far less than declared
			})
			_, err := Extract(data, Limits{MaxFileSize: 1 << 20})
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.yaml") {
				t.Fatalf("got %v", err)
			}
		})
	}
	// Many small files: the total bound holds.
	data := rawTarGz(t, func(tw *tar.Writer) {
		for i := range 40 {
			tw.WriteHeader(&tar.Header{Name: "f" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Typeflag: tar.TypeReg, Size: 64 << 10, Mode: 0o600})
			tw.Write(make([]byte, 64<<10))
		}
	})
	if _, err := Extract(data, Limits{MaxTotalSize: 1 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("total: %v", err)
	}
	if _, err := Extract(data, Limits{MaxFiles: 10}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("files: %v", err)
	}
}

// TestExtractSkippedBomb: gigabytes of zeros in members Extract skips
// (a contiguous-file entry) still count: decompression stops at the bound.
func TestExtractSkippedBomb(t *testing.T) {
	zeros := make([]byte, 1<<20)
	data := rawTarGz(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "cont", Typeflag: tar.TypeCont, Size: 64 << 20, Mode: 0o600})
		for range 64 {
			tw.Write(zeros)
		}
		tw.WriteHeader(&tar.Header{Name: "a.yaml", Typeflag: tar.TypeReg, Size: 1, Mode: 0o600})
		tw.Write([]byte("a"))
	})
	t.Logf("%d MiB decompressed from %d KiB", 64, len(data)>>10)
	if _, err := Extract(data, Limits{MaxTotalSize: 4 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

// TestExtractLinksAndTraversal: symlinks and hard links are never
// extracted, whatever they point to; traversal names are refused.
func TestExtractLinksAndTraversal(t *testing.T) {
	data := rawTarGz(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "app/kustomization.yaml", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
		tw.WriteHeader(&tar.Header{Name: "app/up.yaml", Typeflag: tar.TypeSymlink, Linkname: "../../../etc/shadow"})
		tw.WriteHeader(&tar.Header{Name: "app/hard.yaml", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"})
		tw.WriteHeader(&tar.Header{Name: "app/ok.yaml", Typeflag: tar.TypeReg, Size: 2, Mode: 0o600})
		tw.Write([]byte("a\n"))
	})
	files, err := Extract(data, Limits{})
	if err != nil || len(files) != 1 || files["app/ok.yaml"] == nil {
		t.Fatalf("files %v, err %v", names(t, files), err)
	}
	for _, n := range []string{"..", "../x", "a/../../x", "/etc/passwd", "a\\..\\..\\x", "./../x"} {
		data := rawTarGz(t, func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Size: 1, Mode: 0o600})
			tw.Write([]byte("x"))
		})
		if _, err := Extract(data, Limits{}); err == nil || !strings.Contains(err.Error(), "unsafe path") {
			t.Errorf("%q: %v", n, err)
		}
	}
}

// TestFetchOversized: an artifact larger than the bound is refused while
// downloading, with bounded memory.
func TestFetchOversized(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 256 { // 256 MiB, endless for the client's purposes
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := (&Fetcher{Limits: Limits{MaxTotalSize: 8 << 20}}).Fetch(context.Background(), srv.URL+"/a.tar.gz", "sha256:00")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
		t.Fatalf("allocated %d MiB for an 8 MiB bound", grown>>20)
	}
}
