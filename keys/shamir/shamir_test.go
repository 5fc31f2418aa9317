package shamir

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func TestSplitCombine(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	for parts := 2; parts <= 5; parts++ {
		for th := 2; th <= parts; th++ {
			shares, err := Split(secret, parts, th)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range shares {
				if len(s) != 33 || s[32] != byte(i+1) {
					t.Fatalf("share %d layout: len %d x %d", i, len(s), s[32])
				}
			}
			// Every subset of size >= th recovers; size th-1 does not.
			for mask := 1; mask < 1<<parts; mask++ {
				var sub [][]byte
				for i := 0; i < parts; i++ {
					if mask&(1<<i) != 0 {
						sub = append(sub, shares[i])
					}
				}
				if len(sub) < 2 {
					continue
				}
				got, err := Combine(sub)
				if err != nil {
					t.Fatal(err)
				}
				if len(sub) >= th && !bytes.Equal(got, secret) {
					t.Fatalf("parts %d threshold %d: subset %b did not recover", parts, th, mask)
				}
				if len(sub) < th && bytes.Equal(got, secret) {
					t.Fatalf("parts %d threshold %d: subset %b below threshold recovered", parts, th, mask)
				}
			}
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := Split(nil, 3, 2); err == nil {
		t.Error("empty secret")
	}
	if _, err := Split([]byte{1}, 2, 3); err == nil {
		t.Error("parts < threshold")
	}
	if _, err := Split([]byte{1}, 3, 1); err == nil {
		t.Error("threshold 1")
	}
	s, _ := Split([]byte{1, 2}, 3, 2)
	if _, err := Combine([][]byte{s[0], s[0]}); err == nil {
		t.Error("duplicate share")
	}
	if _, err := Combine([][]byte{s[0]}); err == nil {
		t.Error("one share")
	}
	if _, err := Combine([][]byte{s[0], s[1][:2]}); err == nil {
		t.Error("length mismatch")
	}
}

// A fixed vector: Lagrange at 0 of the line through (1, 0x53^0xca... ) is
// checked by recombining shares made with known coefficients.
func TestKnownField(t *testing.T) {
	if mul(0x53, 0xca) != 0x01 {
		t.Fatalf("0x53 * 0xca = %#x, want 0x01 in the AES field", mul(0x53, 0xca))
	}
	if div(1, 0x53) != 0xca {
		t.Fatal("inverse of 0x53")
	}
}

func FuzzCombine(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{4, 5, 6})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		_, _ = Combine([][]byte{a, b})
	})
}
