package yaml

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/stores/storetest"
)

func TestRoundTripSopsBytes(t *testing.T) {
	plain := storetest.Decrypted(t, storetest.Case{New: func() sops.Store { return New(0) }, Encrypted: "testdata/sops.enc.yaml"}, "testdata/test.agekey")
	want, _ := os.ReadFile("testdata/decrypted.golden.yaml")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile("testdata/decrypted.golden.yaml", plain, 0o644)
		want = plain
	}
	if !bytes.Equal(plain, want) {
		t.Fatalf("decrypted output differs from the golden file:\n%s", plain)
	}
	// The inline comment stays on its line (sops moves it above the key).
	if !strings.Contains(string(plain), "apiVersion: v1 # inline\n") {
		t.Errorf("inline comment moved:\n%s", plain)
	}
}

func TestPlainRoundTrip(t *testing.T) {
	in, _ := os.ReadFile("testdata/plain.yaml")
	s := New(0)
	b, err := s.LoadPlainFile(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.EmitPlainFile(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s.LoadPlainFile(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := s.EmitPlainFile(b2)
	if !bytes.Equal(out, out2) {
		t.Fatalf("emit is not stable:\n%s\n---\n%s", out, out2)
	}
}

func TestLoadErrors(t *testing.T) {
	s := New(0)
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", sops.ErrNoDocuments},
		{"already encrypted", "a: 1\nsops:\n    version: 3.13.3\n", sops.ErrAlreadyEncrypted},
	} {
		if _, err := s.LoadPlainFile([]byte(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, bad := range []string{"- a\n- b\n", "a: 1\na: 2\n", "a: [\n", "just a string\n"} {
		if _, err := s.LoadPlainFile([]byte(bad)); err == nil {
			t.Errorf("%q loaded", bad)
		}
	}
	if _, err := s.LoadEncryptedFile([]byte("a: 1\n")); !errors.Is(err, sops.ErrMetadataNotFound) {
		t.Errorf("no metadata: %v", err)
	}
	// Billion laughs: expansion is bounded.
	var sb strings.Builder
	sb.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		sb.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("*a" + string(rune('0'+i-1)))
		}
		sb.WriteString("]\n")
	}
	if _, err := s.LoadPlainFile([]byte(sb.String())); !errors.Is(err, ErrTooLarge) {
		t.Errorf("billion laughs: %v", err)
	}
}

func TestIndent(t *testing.T) {
	b, _ := New(0).LoadPlainFile([]byte("a:\n  b:\n    - c\n"))
	out, _ := New(2).EmitPlainFile(b)
	if string(out) != "a:\n  b:\n    - c\n" {
		t.Errorf("indent 2: %q", out)
	}
	out, _ = New(0).EmitPlainFile(b)
	if string(out) != "a:\n    b:\n        - c\n" {
		t.Errorf("indent 4: %q", out)
	}
}

var testCase = storetest.Case{
	New:       func() sops.Store { return New(0) },
	Encrypted: "testdata/sops.enc.yaml",
	Plain:     "testdata/plain.yaml",
}

func FuzzLoadPlain(f *testing.F) {
	storetest.Seed(f, "testdata/sops.enc.yaml")
	f.Add([]byte("a: &x [1, 2]\nb: *x\n"))
	f.Add([]byte("b: &b\n  x: 1\nd:\n  <<: *b\n  y: 2\ne:\n  <<: [*b, {z: 3}]\n"))
	f.Add([]byte("d:\n    !!merge <<:\n        x: 1\n\"<<\": v\n"))
	f.Add([]byte("big: 12345678901234567890\nneg: -12345678901234567890\nhex: 0xffffffffffffffff\nmax: 9223372036854775807\n"))
	storetest.FuzzLoadPlain(f, testCase)
}

func FuzzLoadEncrypted(f *testing.F) { storetest.FuzzLoadEncrypted(f, testCase) }

// TestChunkedEmitIsIdentical checks that emitting top-level pairs in slices
// prints exactly what one encoder run prints.
func TestChunkedEmitIsIdentical(t *testing.T) {
	defer func(n int) { chunkPairs = n }(chunkPairs)
	extra := map[string]string{
		"between": "a: 1\n# between a and b\nb: 2 # line\n\n# foot of b\n",
		"lists":   "# top\nl:\n    - 1\n    # c\n    - 2\nm:\n    k: v\n# end\n",
		"empty":   "{}\n",
	}
	for _, f := range []string{"testdata/plain.yaml", "testdata/sops.enc.yaml", "testdata/decrypted.golden.yaml", "between", "lists", "empty"} {
		in, err := os.ReadFile(f)
		if err != nil {
			in = []byte(extra[f])
		}
		b, err := New(0).load(in)
		if err != nil {
			t.Fatal(err)
		}
		chunkPairs = 1 << 30
		whole, err := New(0).EmitPlainFile(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 2, 3} {
			chunkPairs = n
			got, err := New(0).EmitPlainFile(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, whole) {
				t.Fatalf("%s with %d pairs per chunk:\n%s\n--- one run:\n%s", f, n, got, whole)
			}
		}
	}
}

// A merge key round-trips as a merge key, written as sops 3.13 writes it;
// a "<<" key with a scalar value stays a quoted string key.
func TestMergeKey(t *testing.T) {
	s := New(0)
	in := "b: &b\n  x: 1\nd:\n  <<: *b\n  k: 2\nl:\n  <<: [*b]\n\"<<\": v\n"
	tree, err := s.LoadPlainFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.EmitPlainFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	want := "b:\n    x: 1\nd:\n    !!merge <<:\n        x: 1\n    k: 2\nl:\n    !!merge <<:\n        - x: 1\n\"<<\": v\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	again, err := s.LoadPlainFile(out)
	if err != nil || !reflect.DeepEqual(again, tree) {
		t.Fatalf("reload: %v\n%#v\n%#v", err, again, tree)
	}
}

// Integers between 2^63 and 2^64-1 are refused, as sops refuses them;
// beyond, they are floats, as in sops.
func TestIntegerBeyondInt64(t *testing.T) {
	s := New(0)
	for _, in := range []string{"a: 12345678901234567890\n", "a: 0xffffffffffffffff\n", "a: 9223372036854775808\n"} {
		if _, err := s.LoadPlainFile([]byte(in)); !errors.Is(err, sops.ErrIntegerOutOfRange) {
			t.Errorf("%q: %v", in, err)
		}
	}
	tree, err := s.LoadPlainFile([]byte("a: 123456789012345678901234\nb: 9223372036854775807\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tree[0][0].Value.(float64); !ok {
		t.Errorf("a: %T", tree[0][0].Value)
	}
	if v, ok := tree[0][1].Value.(int); !ok || v != 1<<63-1 {
		t.Errorf("b: %#v", tree[0][1].Value)
	}
}
