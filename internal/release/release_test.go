package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// The suite builds the release for this machine's platform only (the full
// matrix is hack/release.sh's), once per package run; TestReproducible
// builds it a second time.
var first struct {
	once sync.Once
	out  string
	res  *Result
	err  error
}

var tmpRoot string

func TestMain(m *testing.M) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "lacre-release-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

func testOptions(t *testing.T, out string) Options {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Root: root, Out: out, Version: "0.0.0-test", Commit: "0123456789abcdef0123456789abcdef01234567",
		Epoch:     time.Unix(1764547200, 0).UTC(),
		Platforms: []Platform{hostPlatform()}, ImagePlatforms: []Platform{{"linux", runtime.GOARCH}},
	}
	// The SBOM needs cyclonedx-gomod (hack/test.sh installs it).
	if p, err := exec.LookPath("cyclonedx-gomod"); err == nil {
		o.SBOMTool = p
	} else {
		t.Log("cyclonedx-gomod not on PATH: building without the SBOM")
	}
	return o
}

// built is the first build, shared by the tests.
func built(t *testing.T) (Options, *Result) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is needed to build the release")
	}
	o := testOptions(t, filepath.Join(tmpRoot, "first"))
	first.once.Do(func() {
		first.res, first.err = Build(context.Background(), o)
	})
	if first.err != nil {
		t.Fatal(first.err)
	}
	return o, first.res
}

// TestReproducible builds the release twice and compares checksums.txt
// (every file, byte for byte) and the image digest; install.yaml names the
// image by that digest, and so does the archive's lacre-cluster.
func TestReproducible(t *testing.T) {
	o, res := built(t)
	o2 := testOptions(t, filepath.Join(tmpRoot, "second"))
	res2, err := Build(context.Background(), o2)
	if err != nil {
		t.Fatal(err)
	}
	if res.ImageDigest != res2.ImageDigest {
		t.Errorf("image digests differ: %s and %s", res.ImageDigest, res2.ImageDigest)
	}
	sums, sums2 := read(t, o.Out, ChecksumsFile), read(t, o2.Out, ChecksumsFile)
	if sums != sums2 {
		t.Errorf("checksums differ:\n%s\n%s", sums, sums2)
	}
	want := []string{"lacre_0.0.0-test_" + hostPlatform().OS + "_" + hostPlatform().Arch, o.ImageArchive(), InstallFile}
	for _, w := range want {
		if !strings.Contains(sums, w) {
			t.Errorf("checksums.txt has no %s:\n%s", w, sums)
		}
	}
	if o.SBOMTool != "" && !strings.Contains(sums, "lacre-cluster_0.0.0-test.sbom.cdx.json") {
		t.Errorf("checksums.txt has no SBOM:\n%s", sums)
	}
	if !strings.HasPrefix(res.ImageDigest, "sha256:") || res.ImageRef != "ghcr.io/lacre/lacre:v0.0.0-test@"+res.ImageDigest {
		t.Errorf("image ref %q", res.ImageRef)
	}
	if y := read(t, o.Out, InstallFile); !strings.Contains(y, "image: "+res.ImageRef+"\n") {
		t.Errorf("install.yaml does not name %s", res.ImageRef)
	}
}

// TestArchiveBinariesStamped: the archive holds lacre and lacre-cluster,
// sorted, with the epoch as time; its lacre-cluster's version, commit,
// date and image digest are the build's, and its `install --export` names
// the image by that digest.
func TestArchiveBinariesStamped(t *testing.T) {
	o, res := built(t)
	p := hostPlatform()
	if p.OS == "windows" {
		t.Skip("zip archive")
	}
	name := fmt.Sprintf("lacre_%s_%s_%s", o.Version, p.OS, p.Arch)
	dir := t.TempDir()
	f, err := os.Open(filepath.Join(o.Out, name+".tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(o.Epoch) || h.Uid != 0 {
			t.Errorf("%s: time %s uid %d", h.Name, h.ModTime, h.Uid)
		}
		if base := filepath.Base(h.Name); h.Typeflag == tar.TypeReg && strings.HasPrefix(base, "lacre") {
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(filepath.Join(dir, base), b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := strings.Join(names, " "); !strings.Contains(got, name+"/lacre "+name+"/lacre-cluster") {
		t.Errorf("archive entries: %s", got)
	}
	out, err := exec.Command(filepath.Join(dir, "lacre-cluster"), "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var b cliapp.BuildInfo
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	if b.Version != o.Version || b.Commit != o.Commit || b.Date != "2025-12-01T00:00:00Z" || b.ImageDigest != res.ImageDigest {
		t.Errorf("lacre-cluster version: %+v", b)
	}
	y, err := exec.Command(filepath.Join(dir, "lacre-cluster"), "install", "--export").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(y, []byte("image: "+res.ImageRef+"\n")) {
		t.Errorf("install --export does not name %s", res.ImageRef)
	}
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
