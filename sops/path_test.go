package sops

import (
	"errors"
	"reflect"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []any
	}{
		{`["a"]`, []any{"a"}},
		{`["a"][0]["b c"]`, []any{"a", 0, "b c"}},
		{`['x']`, []any{"x"}},
		{`["q\"uote"]`, []any{`q"uote`}},
		{` ["a"] `, []any{"a"}},
	} {
		got, err := ParsePath(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePath(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, _ := ParsePath(FormatPath(got)); !reflect.DeepEqual(back, got) {
			t.Errorf("FormatPath round trip of %q: %v", tc.in, back)
		}
	}
	for _, bad := range []string{"", "a", `["a"`, `[x]`, `[-1]`, `["a"]x`} {
		if _, err := ParsePath(bad); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ParsePath(%q) = %v, want ErrInvalidPath", bad, err)
		}
	}
}

func TestGetSetUnset(t *testing.T) {
	b := TreeBranch{{Key: "a", Value: TreeBranch{{Key: "b", Value: []any{1, 2}}}}}
	v, err := b.Get([]any{"a", "b", 1})
	if err != nil || v != 2 {
		t.Fatalf("Get = %v, %v", v, err)
	}
	if _, err := b.Get([]any{"a", "x"}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get missing = %v", err)
	}
	b, err = b.Set([]any{"a", "c", "d"}, "new")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get([]any{"a", "c", "d"}); v != "new" {
		t.Fatalf("Set did not create the path: %v", v)
	}
	b, err = b.Set([]any{"a", "b", 2}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get([]any{"a", "b"}); !reflect.DeepEqual(v, []any{1, 2, 3}) {
		t.Fatalf("Set append: %v", v)
	}
	if _, err := b.Set([]any{"a", "b", 9}, 3); err == nil {
		t.Fatal("Set past the end of a list succeeded")
	}
	b, err = b.Unset([]any{"a", "b", 0})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get([]any{"a", "b"}); !reflect.DeepEqual(v, []any{2, 3}) {
		t.Fatalf("Unset list element: %v", v)
	}
	if _, err := b.Unset([]any{"zz"}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Unset missing = %v", err)
	}
}

func FuzzParsePath(f *testing.F) {
	f.Add(`["a"][0]["b"]`)
	f.Add(`['x'][12]`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		back, err := ParsePath(FormatPath(p))
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
	})
}
