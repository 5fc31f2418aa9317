package cli

import (
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sopsfile"
)

// ruleSelection is what encrypt and edit encrypt in a new file: the
// selection flags in r when any is given, else the creation rule's
// (--mac-only-encrypted adds to either). The selection itself is
// sops.Selection.
func ruleSelection(r sopsfile.Rules, rule *rules.CreationRule) sopsfile.Rules {
	if !r.HasRule() {
		mac := r.MACOnlyEncrypted || rule.MACOnlyEncrypted
		r = rule.Selection
		r.MACOnlyEncrypted = mac
	} else if rule.MACOnlyEncrypted {
		r.MACOnlyEncrypted = true
	}
	return r
}
