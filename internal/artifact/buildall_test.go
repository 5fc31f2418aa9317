package artifact

import (
	"testing"
	"testing/fstest"
)

// TestBuildAllNoIgnoreRules: BuildAll (a Bucket's objects) applies no
// default exclusions and no .sourceignore: those are plain files.
func TestBuildAllNoIgnoreRules(t *testing.T) {
	fsys := fstest.MapFS{
		".sourceignore":   {Data: []byte("*.yaml\n")},
		"a/.sourceignore": {Data: []byte("*\n")},
		"a/b.yaml":        {Data: []byte("b: 1\n")},
		"a/.sops.yaml":    {Data: []byte("creation_rules: []\n")},
		"logo.png":        {Data: []byte("png")},
	}
	data, err := BuildAll(fsys, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Extract(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for name := range fsys {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing from the archive", name)
		}
	}
	if again, _ := BuildAll(fsys, Limits{}); string(again) != string(data) {
		t.Error("BuildAll is not deterministic")
	}
	if _, err := BuildAll(fsys, Limits{MaxFiles: 2}); err == nil {
		t.Error("BuildAll ignored the limits")
	}
}
