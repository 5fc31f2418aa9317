package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lacre/lacre/keys/shamir"
)

// A Typed identity or recipient handles stanzas of one type only. Identities
// that implement it are only asked to unwrap stanzas of their type, and a
// failed decryption says which identities of the type were tried.
type Typed interface {
	StanzaType() string
}

// ErrNoKey is returned (wrapped) when the data key cannot be recovered.
var ErrNoKey = errors.New("could not retrieve the data key")

// WrapGroups wraps dataKey for key groups. One group: every recipient wraps
// the whole key. Several: the key is split with Shamir's scheme and group i
// wraps share i (x = i+1); threshold 0 means every group is needed. It
// returns the groups and the threshold to record (0 for one group).
func WrapGroups(ctx context.Context, dataKey []byte, groups [][]Recipient, threshold int) ([]Group, int, error) {
	if len(groups) == 0 {
		return nil, 0, errors.New("no key groups")
	}
	for i, g := range groups {
		if len(g) == 0 {
			return nil, 0, fmt.Errorf("key group %d has no master keys", i)
		}
	}
	parts := [][]byte{dataKey}
	if len(groups) > 1 {
		if threshold == 0 {
			threshold = len(groups)
		}
		if threshold < 2 || threshold > len(groups) {
			return nil, 0, fmt.Errorf("shamir threshold %d is invalid for %d key groups: it must be between 2 and %d", threshold, len(groups), len(groups))
		}
		var err error
		if parts, err = shamir.Split(dataKey, len(groups), threshold); err != nil {
			return nil, 0, err
		}
	} else {
		threshold = 0
	}
	out := make([]Group, len(groups))
	for i, g := range groups {
		for _, r := range g {
			s, err := r.Wrap(ctx, parts[i])
			if err != nil {
				return nil, 0, fmt.Errorf("key group %d: %s: %w", i, Describe(r), err)
			}
			out[i] = append(out[i], s)
		}
	}
	return out, threshold, nil
}

// An Attempt records why one master key of a file could not be used.
type Attempt struct {
	Type, ID string // the stanza's type and public identity
	Tried    []string
	Err      error
}

// A GroupError lists the attempts of one key group.
type GroupError struct {
	Index    int
	Attempts []Attempt
}

// NoKeyError reports a data key that could not be recovered: every key
// group, every master key tried and why each failed. It holds no secrets.
type NoKeyError struct {
	Groups    []GroupError
	Recovered int // groups that did unwrap
	Needed    int // groups needed
}

func (e *NoKeyError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "could not retrieve the data key: %d of the %d key group(s) needed could be decrypted", e.Recovered, e.Needed)
	for _, g := range e.Groups {
		fmt.Fprintf(&sb, "\n  key group %d:", g.Index)
		for _, a := range g.Attempts {
			fmt.Fprintf(&sb, "\n    %s %s: %v", a.Type, a.ID, a.Err)
			if len(a.Tried) > 0 {
				fmt.Fprintf(&sb, " (tried %s)", strings.Join(a.Tried, ", "))
			}
		}
	}
	return sb.String()
}

// Is makes errors.Is(err, ErrNoKey) true.
func (e *NoKeyError) Is(target error) bool { return target == ErrNoKey }

// Unwrap returns the per-key errors.
func (e *NoKeyError) Unwrap() []error {
	var out []error
	for _, g := range e.Groups {
		for _, a := range g.Attempts {
			out = append(out, a.Err)
		}
	}
	return out
}

// DefaultDecryptionOrder is the order in which stanza types are tried.
var DefaultDecryptionOrder = []string{TypeAge, TypePGP}

// errNoIdentity is the reason for a stanza type with no identity at all.
var errNoIdentity = errors.New("no identity of this type is available")

// errNoMatch summarises identities that are all ErrIncorrectIdentity.
var errNoMatch = errors.New("none of the available identities matches")

func orderStanzas(g Group, order []string) Group {
	if order == nil {
		order = DefaultDecryptionOrder
	}
	out := slices.Clone(g)
	rank := func(s *Stanza) int {
		if i := slices.Index(order, s.Type); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(out, func(a, b *Stanza) int { return rank(a) - rank(b) })
	return out
}

// UnwrapGroup unwraps one group's key (or share) with the first identity
// that can.
func UnwrapGroup(ctx context.Context, g Group, ids []Identity, order []string) ([]byte, []Attempt) {
	var attempts []Attempt
	for _, s := range orderStanzas(g, order) {
		a := Attempt{Type: s.Type, ID: s.ID()}
		var errs []error
		for _, id := range ids {
			if t, ok := id.(Typed); ok && t.StanzaType() != s.Type {
				continue
			}
			a.Tried = append(a.Tried, Describe(id))
			key, err := id.Unwrap(ctx, s)
			if err == nil {
				return key, nil
			}
			if ctx.Err() != nil {
				a.Err = ctx.Err()
				return nil, append(attempts, a)
			}
			if !errors.Is(err, ErrIncorrectIdentity) {
				errs = append(errs, fmt.Errorf("%s: %w", Describe(id), err))
			}
		}
		switch {
		case len(errs) > 0:
			a.Err = errors.Join(errs...)
		case len(a.Tried) == 0:
			a.Err = errNoIdentity
		default:
			a.Err = errNoMatch
		}
		if len(a.Tried) > 4 {
			a.Tried = append(a.Tried[:4:4], fmt.Sprintf("%d more", len(a.Tried)-4))
		}
		attempts = append(attempts, a)
	}
	return nil, attempts
}

// UnwrapGroups recovers the data key: with one group, any stanza of it; with
// several, shares from at least threshold groups, combined. Groups are tried
// in order and stop once enough are recovered.
func UnwrapGroups(ctx context.Context, groups []Group, threshold int, ids []Identity, order []string) ([]byte, error) {
	needed := 1
	if len(groups) > 1 {
		needed = threshold
		if needed == 0 {
			needed = len(groups)
		}
	}
	e := &NoKeyError{Needed: needed}
	var parts [][]byte
	for i, g := range groups {
		key, attempts := UnwrapGroup(ctx, g, ids, order)
		if key != nil {
			parts = append(parts, key)
			if len(parts) == needed {
				break
			}
			continue
		}
		e.Groups = append(e.Groups, GroupError{Index: i, Attempts: attempts})
		if ctx.Err() != nil {
			break
		}
	}
	e.Recovered = len(parts)
	if len(parts) < needed {
		return nil, e
	}
	if len(groups) == 1 {
		return parts[0], nil
	}
	key, err := shamir.Combine(parts)
	if err != nil {
		return nil, fmt.Errorf("%w: combining shamir shares: %v", ErrNoKey, err)
	}
	return key, nil
}
