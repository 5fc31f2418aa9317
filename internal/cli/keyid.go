package cli

// Which master key is this? The functions of this file answer it for the
// file commands (rotate --rm-*, updatekeys, check secrets); they are meant
// to give way to the library's one answer.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
)

// matchesKey reports whether a stanza is the master key a rule key names.
func matchesKey(s *keys.Stanza, k rules.Key) bool {
	if s.Type != k.Type {
		return false
	}
	switch k.Type {
	case keys.TypeAge:
		return s.Field("recipient") == k.Value
	case keys.TypePGP:
		return strings.EqualFold(s.Field("fp"), k.Value)
	case keys.TypeKMS:
		return s.Field("arn") == k.Value && (k.Role == "" || s.Field("role") == k.Role)
	case keys.TypeGCPKMS:
		return s.Field("resource_id") == k.Value
	case keys.TypeAzureKV:
		u := strings.TrimSuffix(k.Value, "/")
		id := s.Field("vault_url") + "/keys/" + s.Field("name")
		return u == id || u == id+"/"+s.Field("version")
	case keys.TypeVault:
		return s.ID() == k.Value
	}
	return s.ID() == k.Value
}

// keyID is the identity of a rule key, comparable with Stanza.ID for the
// key types whose stanza ID is fully known before wrapping.
func keyID(k rules.Key) string {
	switch k.Type {
	case keys.TypePGP:
		return strings.ToUpper(k.Value)
	case keys.TypeKMS:
		s := &keys.Stanza{Type: k.Type, Fields: map[string]string{"arn": k.Value, "role": k.Role, "aws_profile": k.AWSProfile}, Context: k.Context}
		return s.ID()
	}
	return k.Value
}

func stanzaKeyID(s *keys.Stanza) string {
	switch s.Type {
	case keys.TypePGP:
		return strings.ToUpper(s.Field("fp"))
	case keys.TypeAzureKV:
		return s.Field("vault_url") + "/keys/" + s.Field("name")
	}
	return s.ID()
}

func ruleKeyID(k rules.Key) string {
	if k.Type == keys.TypeAzureKV {
		// Compare without the version: the file records the resolved one.
		parts := strings.Split(strings.TrimSuffix(k.Value, "/"), "/keys/")
		if len(parts) == 2 {
			name, _, _ := strings.Cut(parts[1], "/")
			return parts[0] + "/keys/" + name
		}
	}
	return keyID(k)
}

// GroupDiff describes how a file's key groups differ from the wanted ones.
func GroupDiff(have []keys.Group, haveThreshold int, want [][]rules.Key, wantThreshold int) []string {
	var lines []string
	n := max(len(have), len(want))
	for i := 0; i < n; i++ {
		var h, w []string
		if i < len(have) {
			for _, s := range have[i] {
				h = append(h, s.Type+" "+stanzaKeyID(s))
			}
		}
		if i < len(want) {
			for _, k := range want[i] {
				w = append(w, k.Type+" "+ruleKeyID(k))
			}
		}
		for _, x := range w {
			if !slices.Contains(h, x) {
				lines = append(lines, fmt.Sprintf("group %d: +%s", i, x))
			}
		}
		for _, x := range h {
			if !slices.Contains(w, x) {
				lines = append(lines, fmt.Sprintf("group %d: -%s", i, x))
			}
		}
	}
	if len(want) > 1 {
		wt := wantThreshold
		if wt == 0 {
			wt = len(want)
		}
		if wt != haveThreshold {
			lines = append(lines, fmt.Sprintf("shamir threshold: %d -> %d", haveThreshold, wt))
		}
	}
	return lines
}
