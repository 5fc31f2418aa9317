package sops

import (
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func sampleBranch() TreeBranch {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	return TreeBranch{
		{Key: Comment{Value: " top comment"}},
		{Key: "str", Value: "hello ☃"},
		{Key: "int", Value: 42},
		{Key: "float", Value: 1.5},
		{Key: "bool", Value: true},
		{Key: "time", Value: ts},
		{Key: "empty", Value: ""},
		{Key: "null", Value: nil},
		{Key: "list", Value: []any{"a", Comment{Value: " in list"}, TreeBranch{{Key: "nested", Value: "x"}}}},
		{Key: "data", Value: TreeBranch{
			{Key: Comment{Value: " inner"}},
			{Key: "password", Value: "canary-Secret-1"},
			{Key: "plain_unencrypted", Value: "visible"},
		}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		meta Metadata
	}{
		{"default suffix", Metadata{Selection: Selection{UnencryptedSuffix: DefaultUnencryptedSuffix}}},
		{"encrypted_regex", Metadata{Selection: Selection{EncryptedRegex: "^(data|stringData)$"}}},
		{"unencrypted_regex", Metadata{Selection: Selection{UnencryptedRegex: "^str$"}}},
		{"encrypted_suffix", Metadata{Selection: Selection{EncryptedSuffix: "word"}}},
		{"mac_only_encrypted", Metadata{Selection: Selection{EncryptedRegex: "^data$", MACOnlyEncrypted: true}}},
		{"encrypted_comment_regex", Metadata{Selection: Selection{EncryptedCommentRegex: "inner"}}},
		{"unencrypted_comment_regex", Metadata{Selection: Selection{UnencryptedCommentRegex: "top"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testKey(t)
			c, err := NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			tree := Tree{Branches: TreeBranches{sampleBranch()}, Metadata: tc.meta}
			if err := tree.Encrypt(c); err != nil {
				t.Fatal(err)
			}
			if !IsEncrypted(tree.Metadata.MAC) || tree.Metadata.Version != FormatVersion {
				t.Fatalf("metadata not set: %+v", tree.Metadata)
			}
			c2, _ := NewCipher(key)
			if err := tree.Decrypt(c2, DecryptOptions{}); err != nil {
				t.Fatal(err)
			}
			want := sampleBranch()
			if !reflect.DeepEqual(tree.Branches[0], want) {
				t.Errorf("round trip:\n got %#v\nwant %#v", tree.Branches[0], want)
			}
		})
	}
}

func TestSelection(t *testing.T) {
	key := testKey(t)
	c, _ := NewCipher(key)
	tree := Tree{Branches: TreeBranches{sampleBranch()}, Metadata: Metadata{Selection: Selection{EncryptedRegex: "^data$"}}}
	if err := tree.Encrypt(c); err != nil {
		t.Fatal(err)
	}
	b := tree.Branches[0]
	if b[1].Value != "hello ☃" {
		t.Errorf("str should stay plain: %v", b[1].Value)
	}
	if b[0].Key.(Comment).Value != " top comment" {
		t.Errorf("top comment should stay plain")
	}
	data := b[9].Value.(TreeBranch)
	if !IsEncrypted(data[0].Key.(Comment).Value) {
		t.Errorf("comment inside data should be encrypted: %v", data[0].Key)
	}
	if !IsEncrypted(data[1].Value.(string)) || !strings.HasSuffix(data[1].Value.(string), "type:str]") {
		t.Errorf("password should be encrypted: %v", data[1].Value)
	}
}

func TestIVStash(t *testing.T) {
	key := testKey(t)
	c, _ := NewCipher(key)
	tree := Tree{Branches: TreeBranches{sampleBranch()}, Metadata: Metadata{Selection: Selection{UnencryptedSuffix: DefaultUnencryptedSuffix}}}
	if err := tree.Encrypt(c); err != nil {
		t.Fatal(err)
	}
	enc1 := tree.Branches[0][1].Value
	c2, _ := NewCipher(key)
	if err := tree.Decrypt(c2, DecryptOptions{}); err != nil {
		t.Fatal(err)
	}
	tree.Branches[0][2].Value = 43 // change one value
	if err := tree.Encrypt(c2); err != nil {
		t.Fatal(err)
	}
	if tree.Branches[0][1].Value != enc1 {
		t.Errorf("unchanged value got a new ciphertext")
	}
}

func TestTamper(t *testing.T) {
	key := testKey(t)
	enc := func() Tree {
		c, _ := NewCipher(key)
		tree := Tree{Branches: TreeBranches{sampleBranch()}, Metadata: Metadata{Selection: Selection{UnencryptedSuffix: DefaultUnencryptedSuffix}}}
		if err := tree.Encrypt(c); err != nil {
			t.Fatal(err)
		}
		return tree
	}
	check := func(name string, mutate func(*Tree), want error) {
		t.Run(name, func(t *testing.T) {
			tree := enc()
			mutate(&tree)
			c, _ := NewCipher(key)
			err := tree.Decrypt(c, DecryptOptions{})
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
			if err != nil && strings.Contains(err.Error(), "canary") {
				t.Fatalf("error leaks the value: %v", err)
			}
		})
	}
	check("renamed key", func(tr *Tree) { tr.Branches[0][1].Key = "str2" }, ErrDecryptValue)
	check("swapped values", func(tr *Tree) {
		b := tr.Branches[0]
		b[1].Value, b[9].Value.(TreeBranch)[1].Value = b[9].Value.(TreeBranch)[1].Value, b[1].Value
	}, ErrDecryptValue)
	check("reordered list", func(tr *Tree) {
		l := tr.Branches[0][8].Value.([]any)
		l[0], l[2] = l[2], l[0]
	}, ErrMACMismatch)
	check("changed unencrypted value", func(tr *Tree) {
		tr.Branches[0][9].Value.(TreeBranch)[2].Value = "changed"
	}, ErrMACMismatch)
	check("changed lastmodified", func(tr *Tree) { tr.Metadata.LastModified = tr.Metadata.LastModified.Add(time.Second) }, ErrMACDecrypt)
	check("flipped data", func(tr *Tree) {
		s := tr.Branches[0][9].Value.(TreeBranch)[1].Value.(string)
		i := strings.Index(s, "data:") + 6
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		tr.Branches[0][9].Value.(TreeBranch)[1].Value = string(b)
	}, ErrDecryptValue)
	check("plain value", func(tr *Tree) { tr.Branches[0][9].Value.(TreeBranch)[1].Value = "canary" }, ErrNotEncryptedValue)
	t.Run("ignore mac", func(t *testing.T) {
		tree := enc()
		tree.Branches[0][9].Value.(TreeBranch)[2].Value = "changed"
		c, _ := NewCipher(key)
		if err := tree.Decrypt(c, DecryptOptions{IgnoreMAC: true}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParseEncrypted(t *testing.T) {
	key := testKey(t)
	c, _ := NewCipher(key)
	s, err := c.Encrypt("v", "k:")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseEncrypted(s)
	if err != nil || len(ev.IV) != 32 || len(ev.Tag) != 16 || ev.Type != "str" {
		t.Fatalf("parse: %+v %v", ev, err)
	}
	for _, bad := range []string{"", "ENC[", "ENC[AES256_GCM,data:,iv:,tag:,type:]", "ENC[AES256_GCM,data:!!,iv:AA==,tag:AA==,type:str]"} {
		if _, err := ParseEncrypted(bad); err == nil {
			t.Errorf("ParseEncrypted(%q) succeeded", bad)
		}
	}
	for _, v := range []any{"", Comment{}} {
		out, err := c.Encrypt(v, "k:")
		if err != nil || out != "" {
			t.Errorf("empty value encrypted to %q, %v", out, err)
		}
	}
	if _, err := NewCipher(make([]byte, 16)); err == nil {
		t.Error("short key accepted")
	}
}

func FuzzParseEncrypted(f *testing.F) {
	f.Add("ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]")
	f.Add("ENC[AES256_GCM,data:a,b,iv:c,tag:d,type:e]")
	f.Add("ENC[AES256_GCM,data:Zm9v,iv:YmFy,tag:YmF6,type:int]trailing")
	key := make([]byte, 32)
	f.Fuzz(func(t *testing.T, s string) {
		ev, err := ParseEncrypted(s)
		if err != nil {
			// Parse errors are fixed messages: nothing of the input.
			switch err.Error() {
			case ErrNotEncryptedValue.Error(), "malformed encrypted value: bad base64 in data",
				"malformed encrypted value: bad base64 in iv", "malformed encrypted value: bad base64 in tag":
			default:
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		if ev == nil {
			t.Fatal("nil value without error")
		}
		c, _ := NewCipher(key)
		_, _ = c.Decrypt(s, "k:")
	})
}
