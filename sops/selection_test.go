package sops

import (
	"slices"
	"testing"
)

func TestSelectionDiff(t *testing.T) {
	for _, tc := range []struct {
		name       string
		file, rule Selection
		want       []string
	}{
		{"same", Selection{EncryptedRegex: "^data$"}, Selection{EncryptedRegex: "^data$"}, nil},
		{"rule without a rule is the default", Selection{UnencryptedSuffix: DefaultUnencryptedSuffix}, Selection{}, nil},
		{"narrowed regex", Selection{EncryptedRegex: "^data$"}, Selection{EncryptedRegex: "^(data|stringData)$"},
			[]string{`encrypted_regex: "^data$", rule: "^(data|stringData)$"`}},
		{"other rule", Selection{UnencryptedSuffix: "_pub"}, Selection{EncryptedRegex: "^data$"},
			[]string{`unencrypted_suffix: "_pub", rule: ""`, `encrypted_regex: "", rule: "^data$"`}},
		{"mac_only_encrypted", Selection{UnencryptedSuffix: DefaultUnencryptedSuffix, MACOnlyEncrypted: true}, Selection{},
			[]string{"mac_only_encrypted: true, rule: false"}},
	} {
		if got := tc.file.Diff(tc.rule); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
