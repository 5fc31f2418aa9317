package yaml

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/stores/storetest"
)

// slowEmit is the yaml.v3 path.
func slowEmit(t testing.TB, b sops.TreeBranches) []byte {
	old := fastEnabled
	fastEnabled = false
	defer func() { fastEnabled = old }()
	out, err := New(0).EmitPlainFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func slowLoad(in []byte) (sops.TreeBranches, error) {
	old := fastEnabled
	fastEnabled = false
	defer func() { fastEnabled = old }()
	return New(0).load(in)
}

var vocabulary = []any{
	"plain", "two words", "ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CC==,type:str]", "", "y", "no", "True", "null",
	"line one\nline two\n", "no newline\nat end", "a: b", "- dash", "#hash", "spaces  double", " lead", "trail ",
	"emoji ☃", "x@y.z", "a/b/c", "1.5", "007", "0x1F", "2024-01-02", "<<", "very long value with many words that will certainly go past the eighty column limit of the emitter",
	"tab\tin", "quote\"in", "back\\slash", "\n", "multi\n\nblank\n",
	0, 42, -7, 1.5, 1e21, 0.1, true, false, nil,
}

func randValue(r *rand.Rand, depth int) any {
	switch n := r.Intn(10); {
	case n < 6 || depth > 3:
		return vocabulary[r.Intn(len(vocabulary))]
	case n < 8:
		return randBranch(r, depth+1)
	default:
		var l []any
		for i := r.Intn(4); i >= 0; i-- {
			l = append(l, randValue(r, depth+1))
		}
		if r.Intn(5) == 0 {
			return []any{}
		}
		return l
	}
}

var keyWords = []string{"a", "key", "b_c", "on", "y", "data", "stringData", "x.y", "with space", "ENC", "-k", "k:", "1", "true", "long" + strings.Repeat("k", 130)}

func randBranch(r *rand.Rand, depth int) sops.TreeBranch {
	b := sops.TreeBranch{}
	seen := map[string]bool{}
	for i := r.Intn(5); i >= 0; i-- {
		k := keyWords[r.Intn(len(keyWords))]
		if seen[k] {
			continue
		}
		seen[k] = true
		b = append(b, sops.TreeItem{Key: k, Value: randValue(r, depth)})
	}
	return b
}

// TestFastPathMatchesYAMLv3 compares the fast emitter and loader with
// yaml.v3 on random trees: whenever the fast path answers, the bytes and
// the parsed values must be identical.
func TestFastPathMatchesYAMLv3(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	fastEmits, fastLoads := 0, 0
	for i := 0; i < 20000; i++ {
		docs := sops.TreeBranches{randBranch(r, 0)}
		if r.Intn(8) == 0 {
			docs = append(docs, randBranch(r, 0))
		}
		want := slowEmit(t, docs)
		if got, ok := fastEmit(docs, DefaultIndent); ok {
			fastEmits++
			if !bytes.Equal(got, want) {
				t.Fatalf("fast emit differs for %#v:\n--- fast\n%s--- yaml.v3\n%s", docs, got, want)
			}
		}
		wantTree, err := slowLoad(want)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := fastLoad(want); ok {
			fastLoads++
			if !reflect.DeepEqual(got, wantTree) {
				t.Fatalf("fast load differs for:\n%s\n--- fast %#v\n--- yaml.v3 %#v", want, got, wantTree)
			}
		}
	}
	t.Logf("fast emit answered %d, fast load %d of 20000", fastEmits, fastLoads)
	if fastEmits < 1000 || fastLoads < 1000 {
		t.Fatalf("the fast path answered too rarely: emit %d, load %d", fastEmits, fastLoads)
	}
}

func TestFastPathGoldens(t *testing.T) {
	for _, f := range []string{"testdata/sops.enc.yaml", "testdata/plain.yaml", "testdata/decrypted.golden.yaml"} {
		in, _ := os.ReadFile(f)
		want, err := slowLoad(in)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := fastLoad(in); ok && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast load differs", f)
		}
	}
}

func FuzzFastPath(f *testing.F) {
	storetest.Seed(f, "testdata/plain.yaml", "testdata/sops.enc.yaml")
	f.Add([]byte("a:\n    - b: 1\n      c: |\n        x\n\n        y\n    - []\nd: {}\n"))
	f.Add([]byte("d:\n    !!merge <<:\n        x: 1\n    <<: {y: 2}\nbig: 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := fastLoad(in)
		if !ok {
			return
		}
		want, err := slowLoad(in)
		if err != nil {
			t.Fatalf("fast path accepted YAML that yaml.v3 rejects (%v):\n%q", err, in)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast load differs on %q:\n%#v\n%#v", in, got, want)
		}
		if out, ok := fastEmit(got, DefaultIndent); ok {
			if slow := slowEmit(t, got); !bytes.Equal(out, slow) {
				t.Fatalf("fast emit differs:\n%s\n---\n%s", out, slow)
			}
		}
	})
}

var _ = fmt.Sprint

// TestFastCharsASCII checks the bit sets against the plain definition.
func TestFastCharsASCII(t *testing.T) {
	for c := 0; c < 0x80; c++ {
		want := !(c < 0x20 && c != '\n' || c == 0x7f || strings.IndexByte("\t\r#&*!%`\x00", byte(c)) >= 0)
		if got := fastChars([]byte{byte(c)}); got != want {
			t.Errorf("fastChars(%q) = %v, want %v", rune(c), got, want)
		}
	}
}

// TestFastDuplicateKeys: duplicate keys leave the fast path, in small and
// large mappings.
func TestFastDuplicateKeys(t *testing.T) {
	for _, n := range []int{3, 15, 16, 17, 40} {
		for _, dup := range []int{0, n / 2, n - 1} {
			var sb strings.Builder
			for i := 0; i < n; i++ {
				fmt.Fprintf(&sb, "k%d: v\n", i)
			}
			if _, ok := fastLoad([]byte(sb.String())); !ok {
				t.Fatalf("n=%d: no duplicates, but not on the fast path", n)
			}
			fmt.Fprintf(&sb, "k%d: again\n", dup)
			if _, ok := fastLoad([]byte(sb.String())); ok {
				t.Errorf("n=%d: duplicate key k%d accepted", n, dup)
			}
		}
	}
}
