package cli

import (
	"slices"

	"github.com/spf13/pflag"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/sops"
)

// registerSetUnset adds the format flags of set and unset, and sops's
// --shamir-secret-sharing-threshold, which sops's set and unset accept and
// do not use: the file keeps its key groups and threshold.
func registerSetUnset(f *pflag.FlagSet, ff *formatFlags) {
	f.StringVar(&ff.inputType, "input-type", "", "file format (default: by extension)")
	f.StringVar(&ff.outputType, "output-type", "", "format to write the file in (default: the input format)")
	f.Int("shamir-secret-sharing-threshold", 0, "accepted for sops, which ignores it here too: the file keeps its threshold")
}

// setValue is the raw JSON value of set: the third argument, the file it
// names (--value-file) or stdin (--value-stdin), with sops's argument
// counts and exit codes.
func (a *app) setValue(args []string, valueFile, valueStdin bool) ([]byte, error) {
	switch {
	case valueFile && valueStdin:
		return nil, cliapp.Codef(cliapp.CodeGeneric, "cannot use both --value-file and --value-stdin")
	case valueStdin:
		if len(args) != 2 {
			return nil, cliapp.Codef(cliapp.CodeNoFileSpecified, "with --value-stdin, give exactly FILE and PATH (%d arguments given)", len(args))
		}
		return a.readInput("-")
	case len(args) != 3:
		return nil, cliapp.Codef(cliapp.CodeNoFileSpecified, "give exactly FILE, PATH and VALUE (%d arguments given)", len(args))
	case valueFile:
		return a.readInput(args[2])
	}
	return []byte(args[2]), nil
}

// sopsSetPath adapts path to sops's set, which lacre's TreeBranch.Set
// does not do alone: an index past the end of its list becomes the list's
// length (set appends there; a list set creates starts at 0), and a scalar
// met before the end of the path is replaced by what the rest of the path
// makes. It returns the adapted path and the length of the prefix that
// holds such a scalar (0: none).
func sopsSetPath(b sops.TreeBranch, path []any) (out []any, scalarPrefix int) {
	out = slices.Clone(path)
	var node any = b
	for i, p := range out {
		switch node.(type) {
		case nil, sops.TreeBranch, []any:
		default:
			return out, i
		}
		switch k := p.(type) {
		case string:
			br, _ := node.(sops.TreeBranch)
			node = nil
			for _, it := range br {
				if s, ok := it.Key.(string); ok && s == k {
					node = it.Value
					break
				}
			}
		case int:
			l, isList := node.([]any)
			switch {
			case node == nil:
				out[i] = 0
			case isList && k >= len(l):
				out[i], node = len(l), nil
			case isList:
				node = l[k]
			default:
				return out, 0
			}
		}
	}
	return out, 0
}

// sopsSet is set's change: value at path, as sops sets it.
func sopsSet(b sops.TreeBranch, path []any, value any) (sops.TreeBranch, error) {
	p, n := sopsSetPath(b, path)
	if n > 0 {
		var err error
		if b, err = b.Set(p[:n], nil); err != nil {
			return nil, err
		}
	}
	return b.Set(p, value)
}
