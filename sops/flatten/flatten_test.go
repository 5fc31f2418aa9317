package flatten

import (
	"reflect"
	"testing"

	"github.com/lacre/lacre/sops"
)

func TestRoundTrip(t *testing.T) {
	in := sops.TreeBranch{
		{Key: "age", Value: []any{sops.TreeBranch{{Key: "enc", Value: "x\ny"}, {Key: "recipient", Value: "age1"}}}},
		{Key: "key_groups", Value: []any{sops.TreeBranch{{Key: "pgp", Value: []any{sops.TreeBranch{{Key: "fp", Value: "F"}}}}}}},
		{Key: "shamir_threshold", Value: 2},
	}
	flat, err := Flatten(in, "sops_")
	if err != nil {
		t.Fatal(err)
	}
	if flat[0].Key != "sops_age__list_0__map_enc" || flat[3].Key != "sops_shamir_threshold" {
		t.Fatalf("keys: %v", flat)
	}
	for i := range flat {
		flat[i].Key = flat[i].Key.(string)[len("sops_"):]
	}
	out, err := Unflatten(flat)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip:\n%v\n%v", out, in)
	}
	for _, bad := range []sops.TreeBranch{
		{{Key: "a__list_1", Value: "x"}},
		{{Key: "a", Value: "x"}, {Key: "a__map_b", Value: "y"}},
		{{Key: "a__list_999999999", Value: "x"}},
	} {
		if _, err := Unflatten(bad); err == nil {
			t.Errorf("%v unflattened", bad)
		}
	}
}

func TestValueString(t *testing.T) {
	for v, want := range map[any]string{1.0: "1.0", 1.5: "1.5", true: "true", 7: "7", "s": "s"} {
		if got := ValueString(v); got != want {
			t.Errorf("ValueString(%v) = %q, want %q", v, got, want)
		}
	}
}

func FuzzUnflatten(f *testing.F) {
	f.Add("a__list_0__map_b", "c__map_d")
	f.Fuzz(func(t *testing.T, k1, k2 string) {
		_, _ = Unflatten(sops.TreeBranch{{Key: k1, Value: "x"}, {Key: k2, Value: "y"}})
	})
}
