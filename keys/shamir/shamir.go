// Package shamir implements Shamir's secret sharing over GF(2^8) with the
// AES polynomial, in the share layout SOPS uses (that of HashiCorp Vault):
// each share is the y-bytes of the secret's bytes followed by one x byte,
// and Split gives share i the x coordinate i+1.
package shamir

import (
	"crypto/rand"
	"errors"
	"fmt"
)

var expTable, logTable [256]byte

func init() {
	// Generator 3 over x^8 + x^4 + x^3 + x + 1.
	x := byte(1)
	for i := 0; i < 255; i++ {
		expTable[i] = x
		logTable[x] = byte(i)
		x = mulSlow(x, 3)
	}
	expTable[255] = expTable[0]
}

func mulSlow(a, b byte) byte {
	var p byte
	for b > 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

func mul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return expTable[(int(logTable[a])+int(logTable[b]))%255]
}

func div(a, b byte) byte {
	if b == 0 {
		panic("shamir: division by zero")
	}
	if a == 0 {
		return 0
	}
	return expTable[(int(logTable[a])-int(logTable[b])+255)%255]
}

// Split divides secret into parts shares, any threshold of which recover it.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, errors.New("cannot split an empty secret")
	case threshold < 2:
		return nil, errors.New("threshold must be at least 2")
	case parts < threshold:
		return nil, errors.New("parts cannot be fewer than the threshold")
	case parts > 255:
		return nil, errors.New("parts cannot exceed 255")
	}
	out := make([][]byte, parts)
	for i := range out {
		out[i] = make([]byte, len(secret)+1)
		out[i][len(secret)] = byte(i + 1)
	}
	coeffs := make([]byte, threshold-1)
	for idx, s := range secret {
		if _, err := rand.Read(coeffs); err != nil {
			return nil, fmt.Errorf("could not generate a polynomial: %v", err)
		}
		for i := range out {
			x := byte(i + 1)
			// Horner: s + c1 x + c2 x^2 + ...
			y := byte(0)
			for j := len(coeffs) - 1; j >= 0; j-- {
				y = mul(y, x) ^ coeffs[j]
			}
			out[i][idx] = mul(y, x) ^ s
		}
	}
	return out, nil
}

// Combine recovers the secret from at least two shares with distinct x
// coordinates. Too few shares (below the threshold) give a wrong secret, not
// an error: the caller authenticates the result.
func Combine(shares [][]byte) ([]byte, error) {
	if len(shares) < 2 {
		return nil, errors.New("at least two shares are needed")
	}
	n := len(shares[0])
	if n < 2 {
		return nil, errors.New("shares must be at least two bytes")
	}
	xs := make([]byte, len(shares))
	seen := map[byte]bool{}
	for i, s := range shares {
		if len(s) != n {
			return nil, errors.New("shares have different lengths")
		}
		x := s[n-1]
		if x == 0 || seen[x] {
			return nil, errors.New("duplicate or invalid share")
		}
		seen[x] = true
		xs[i] = x
	}
	secret := make([]byte, n-1)
	for idx := range secret {
		// Lagrange interpolation at 0.
		var acc byte
		for i := range shares {
			num, den := byte(1), byte(1)
			for j := range shares {
				if i == j {
					continue
				}
				num = mul(num, xs[j])
				den = mul(den, xs[i]^xs[j])
			}
			acc ^= mul(shares[i][idx], div(num, den))
		}
		secret[idx] = acc
	}
	return secret, nil
}
