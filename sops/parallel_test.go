package sops

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// bigBranch has more values than parallelMin, of every type, with comments.
func bigBranch() TreeBranch {
	var b TreeBranch
	for i := 0; i < 60; i++ {
		s := sampleBranch()
		s = append(s, TreeItem{Key: "n", Value: i}, TreeItem{Key: "long", Value: strings.Repeat("x", i*7)})
		b = append(b, TreeItem{Key: fmt.Sprintf("k%d", i), Value: s})
	}
	return b
}

// decryptBoth decrypts copies of an encrypted tree with one core (the
// sequential path) and with several (the parallel one).
func decryptBoth(t *testing.T, key []byte, enc func() Tree, reuse bool) (seq, par Tree, seqMAC, parMAC string, seqErr, parErr error, seqC, parC *Cipher) {
	t.Helper()
	run := func(procs int) (Tree, string, error, *Cipher) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		c, err := NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		if !reuse {
			c.DisableIVReuse()
		}
		tree := enc()
		mac, err := tree.DecryptValues(c)
		return tree, mac, err, c
	}
	seq, seqMAC, seqErr, seqC = run(1)
	par, parMAC, parErr, parC = run(4)
	return
}

func TestParallelDecryptMatchesSequential(t *testing.T) {
	n := 0
	(&Tree{Branches: TreeBranches{bigBranch()}}).walk(func(v any, _ string, _ bool) (any, error) { n++; return v, nil })
	if n < parallelMin {
		t.Fatalf("bigBranch has %d leaves, want at least %d", n, parallelMin)
	}
	for _, meta := range []Metadata{
		{Selection: Selection{UnencryptedSuffix: DefaultUnencryptedSuffix}},
		{Selection: Selection{EncryptedRegex: "^(data|list)$", MACOnlyEncrypted: true}},
		{Selection: Selection{EncryptedCommentRegex: "inner"}},
	} {
		key := testKey(t)
		c, _ := NewCipher(key)
		tree := Tree{Branches: TreeBranches{bigBranch(), bigBranch()}, Metadata: meta}
		if err := tree.Encrypt(c); err != nil {
			t.Fatal(err)
		}
		encrypted := func() Tree {
			// A deep copy through the cipher-independent path: re-parse nothing,
			// just rebuild the branches (values are immutable).
			return Tree{Branches: deepCopy(tree.Branches).(TreeBranches), Metadata: tree.Metadata}
		}
		for _, reuse := range []bool{true, false} {
			seq, par, sm, pm, se, pe, sc, pc := decryptBoth(t, key, encrypted, reuse)
			if se != nil || pe != nil {
				t.Fatalf("errors: %v, %v", se, pe)
			}
			if sm != pm || !reflect.DeepEqual(seq.Branches, par.Branches) {
				t.Fatalf("%+v reuse=%v: parallel decryption differs", meta, reuse)
			}
			if !reflect.DeepEqual(sc.stash, pc.stash) {
				t.Fatalf("%+v reuse=%v: remembered IVs differ", meta, reuse)
			}
			if reuse && len(sc.stash) == 0 {
				t.Fatal("no IVs remembered")
			}
			if err := seq.CheckMAC(sc, sm); err != nil {
				t.Fatal(err)
			}
		}

		// Tamper with an early and a late value: both paths report the
		// first one.
		tampered := func() Tree {
			tr := encrypted()
			// ["k3"]["data"]["password"], encrypted under every rule above.
			first := tr.Branches[0][3].Value.(TreeBranch)[9].Value.(TreeBranch)
			first[1].Value = swapValue(first[1].Value.(string))
			last := tr.Branches[1][len(tr.Branches[1])-1].Value.(TreeBranch)[9].Value.(TreeBranch)
			last[1].Value = swapValue(last[1].Value.(string))
			return tr
		}
		for _, reuse := range []bool{true, false} {
			_, _, _, _, se, pe, _, _ := decryptBoth(t, key, tampered, reuse)
			var sv, pv *ValueError
			if !errors.As(se, &sv) || !errors.As(pe, &pv) || sv.Path != pv.Path || se.Error() != pe.Error() || sv.Path != `["k3"]["data"]["password"]` {
				t.Fatalf("reuse=%v: errors differ: %v / %v", reuse, se, pe)
			}
		}
	}
}

func swapValue(s string) string {
	if !strings.HasPrefix(s, "ENC[") {
		return s
	}
	// Change one base64 character of the data.
	i := len("ENC[AES256_GCM,data:")
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case TreeBranches:
		out := make(TreeBranches, len(v))
		for i, b := range v {
			out[i] = deepCopy(b).(TreeBranch)
		}
		return out
	case TreeBranch:
		out := make(TreeBranch, len(v))
		for i, it := range v {
			out[i] = TreeItem{Key: it.Key, Value: deepCopy(it.Value)}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}
