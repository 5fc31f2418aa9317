package cli

// How a file's key groups differ from the wanted ones (updatekeys, check
// secrets). Which master key is which is keyref's rule.

import (
	"fmt"
	"slices"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
)

// GroupDiff describes how a file's key groups differ from the wanted ones.
// Keys compare by keyref ID without the Azure key version (the file records
// the version it resolved; a rule usually names none).
func GroupDiff(have []keys.Group, haveThreshold int, want [][]rules.Key, wantThreshold int) []string {
	var lines []string
	n := max(len(have), len(want))
	for i := 0; i < n; i++ {
		var h, w []string
		if i < len(have) {
			for _, s := range have[i] {
				h = append(h, s.Type+" "+s.Ref().Unversioned().ID())
			}
		}
		if i < len(want) {
			for _, k := range want[i] {
				w = append(w, k.Type+" "+k.Unversioned().ID())
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
