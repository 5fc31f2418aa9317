package cli

import (
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sopsfile"
)

// ruleSelection is what encrypt and edit encrypt in a new file: the
// selection flags in r when any is given, else the creation rule's
// (--mac-only-encrypted adds to either). It is meant to give way to the
// library's one Selection type.
func ruleSelection(r sopsfile.Rules, rule *rules.CreationRule) sopsfile.Rules {
	if !anyRule(r) {
		r = sopsfile.Rules{
			UnencryptedSuffix:       rule.UnencryptedSuffix,
			EncryptedSuffix:         rule.EncryptedSuffix,
			UnencryptedRegex:        rule.UnencryptedRegex,
			EncryptedRegex:          rule.EncryptedRegex,
			UnencryptedCommentRegex: rule.UnencryptedCommentRegex,
			EncryptedCommentRegex:   rule.EncryptedCommentRegex,
			MACOnlyEncrypted:        r.MACOnlyEncrypted || rule.MACOnlyEncrypted,
		}
	} else if rule.MACOnlyEncrypted {
		r.MACOnlyEncrypted = true
	}
	return r
}

func anyRule(r sopsfile.Rules) bool {
	return r.UnencryptedSuffix != "" || r.EncryptedSuffix != "" || r.UnencryptedRegex != "" ||
		r.EncryptedRegex != "" || r.UnencryptedCommentRegex != "" || r.EncryptedCommentRegex != ""
}
