package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"maps"
	"slices"
	"testing"
	"testing/fstest"
)

// headers lists an artifact's members as "name mode type".
func headers(t *testing.T, data []byte) []*tar.Header {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

// TestBuildKeepsDirectories: directories are archived as Flux's
// source-controller does (sorted, fixed mode and mtime), a directory whose
// only file is ignored (.sops.yaml) included, an ignored one not; the
// unpacked tree has them.
func TestBuildKeepsDirectories(t *testing.T) {
	fsys := fstest.MapFS{
		"clusters/cluster0/.sops.yaml": {Data: []byte("creation_rules: []\n")},
		"clusters/cluster1/a.yaml":     {Data: []byte("a: 1\n")},
		"clusters/cluster1-x.yaml":     {Data: []byte("b: 1\n")},
		".github/workflows/ci.yml":     {Data: []byte("on: push\n")},
		"run.sh":                       {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
	}
	data, err := Build(fsys, nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range headers(t, data) {
		if !h.ModTime.Equal(headers(t, data)[0].ModTime) || h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		got = append(got, h.Name+" "+string(h.Typeflag)+" "+formatMode(h.Mode))
	}
	want := []string{
		"clusters/ 5 750", "clusters/cluster0/ 5 750", "clusters/cluster1-x.yaml 0 600",
		"clusters/cluster1/ 5 750", "clusters/cluster1/a.yaml 0 600", "run.sh 0 700",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("members:\n%v\nwant\n%v", got, want)
	}
	again, _ := Build(fsys, nil, Limits{})
	if !bytes.Equal(data, again) {
		t.Fatal("the same tree gave different artifacts")
	}
	files, dirs, err := ExtractTree(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if d := slices.Sorted(maps.Keys(dirs)); !slices.Equal(d, []string{"", "clusters", "clusters/cluster0", "clusters/cluster1"}) {
		t.Errorf("dirs = %q", d)
	}
	if len(files) != 3 {
		t.Errorf("files = %v", names(t, files))
	}
	// A directory holding only an ignored file, dropped by the root
	// .sourceignore: gone with its files.
	fsys[".sourceignore"] = &fstest.MapFile{Data: []byte("clusters/cluster1/\n")}
	data, _ = Build(fsys, nil, Limits{})
	if _, dirs, _ := ExtractTree(data, Limits{}); dirs["clusters/cluster1"] || !dirs["clusters/cluster0"] {
		t.Errorf("root .sourceignore: dirs = %v", dirs)
	}
}

func formatMode(m int64) string {
	return string([]byte{byte('0' + m>>6&7), byte('0' + m>>3&7), byte('0' + m&7)})
}

// TestExtractOldAndForeignArchives: an artifact written before
// directories were archived unpacks with the directories its files imply;
// Flux's form (a "." root, names without a trailing slash) is read; an
// unsafe directory name is refused; directories count against MaxFiles.
func TestExtractOldAndForeignArchives(t *testing.T) {
	old := tarGz(t, map[string]string{"a/b/c.yaml": "x", "d.yaml": "y"}, tar.TypeReg)
	files, dirs, err := ExtractTree(old, Limits{})
	if err != nil || len(files) != 2 {
		t.Fatalf("old artifact: %v %v", names(t, files), err)
	}
	if d := slices.Sorted(maps.Keys(dirs)); !slices.Equal(d, []string{"", "a", "a/b"}) {
		t.Errorf("old artifact dirs = %q", d)
	}
	flux := rawTarGz(t, func(tw *tar.Writer) {
		for _, n := range []string{".", "apps", "apps/empty"} {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o750})
		}
	})
	if _, dirs, err := ExtractTree(flux, Limits{}); err != nil || !dirs["apps/empty"] || !dirs["apps"] || len(dirs) != 3 {
		t.Errorf("Flux form: %v %v", dirs, err)
	}
	for _, n := range []string{"../x/", "/abs/", "a/../../x/"} {
		bad := rawTarGz(t, func(tw *tar.Writer) { tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o750}) })
		if _, _, err := ExtractTree(bad, Limits{}); err == nil {
			t.Errorf("directory %q accepted", n)
		}
	}
	many := rawTarGz(t, func(tw *tar.Writer) {
		for _, n := range []string{"a/", "b/", "c/"} {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o750})
		}
	})
	if _, _, err := ExtractTree(many, Limits{MaxFiles: 2}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("3 directories with MaxFiles 2: %v", err)
	}
}
