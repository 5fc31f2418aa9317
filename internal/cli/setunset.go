package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/sops"
)

func (a *app) setCommand() *cobra.Command {
	var df decryptFlags
	var ff formatFlags
	var valueFile, valueStdin, idempotent bool
	g := ruleGuard{recipients: true}
	cmd := &cobra.Command{
		Use:   "set [flags] FILE PATH VALUE",
		Short: "Set one value of an encrypted file",
		Long: `Set the value at PATH (like '["data"]["password"]') to VALUE, a JSON value, and
write the file back. Other values keep their ciphertext. With --value-file, VALUE
is the path of a file holding the JSON value; with --value-stdin, VALUE is left
out and read from stdin. An index past the end of a list appends (as sops).`,
		Example: `  lacre set secret.enc.yaml '["data"]["password"]' '"hunter2"'
  printf '"%s"' "$TOKEN" | lacre set --value-stdin secret.enc.yaml '["token"]'`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := a.setValue(args, valueFile, valueStdin)
			if err != nil {
				return err
			}
			path, err := sops.ParsePath(args[1])
			if err != nil {
				return cliapp.WithCode(cliapp.CodeInvalidSetFormat, fmt.Errorf("invalid set index format: %v", err))
			}
			value, err := parseJSONValue(raw)
			if err != nil {
				return cliapp.WithCode(cliapp.CodeInvalidSetFormat, fmt.Errorf("the value is not valid JSON: %v", err))
			}
			return prefixErr(args[0], a.modify(cmd.Context(), args[0], &ff, &df, &g, func(b sops.TreeBranch) (sops.TreeBranch, bool, error) {
				if old, err := b.Get(path); err == nil && reflect.DeepEqual(old, value) && idempotent {
					return b, false, nil
				}
				nb, err := sopsSet(b, path, value)
				return nb, true, err
			}))
		},
	}
	df.register(cmd)
	f := cmd.Flags()
	registerSetUnset(f, &ff)
	f.BoolVar(&valueFile, "value-file", false, "VALUE is a file to read the JSON value from (keeps it out of process listings)")
	f.BoolVar(&valueStdin, "value-stdin", false, "read the JSON value from stdin")
	f.BoolVar(&idempotent, "idempotent", false, "do not write the file when the value is already set")
	g.register(f)
	return cmd
}

func (a *app) unsetCommand() *cobra.Command {
	var df decryptFlags
	var ff formatFlags
	var idempotent bool
	cmd := &cobra.Command{
		Use:     "unset [flags] FILE PATH",
		Short:   "Remove one value of an encrypted file",
		Example: `  lacre unset secret.enc.yaml '["data"]["old"]'`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := sops.ParsePath(args[1])
			if err != nil {
				return cliapp.WithCode(cliapp.CodeInvalidSetFormat, err)
			}
			return prefixErr(args[0], a.modify(cmd.Context(), args[0], &ff, &df, nil, func(b sops.TreeBranch) (sops.TreeBranch, bool, error) {
				nb, err := b.Unset(path)
				if errors.Is(err, sops.ErrKeyNotFound) && idempotent {
					return b, false, nil
				}
				return nb, true, err
			}))
		},
	}
	df.register(cmd)
	f := cmd.Flags()
	registerSetUnset(f, &ff)
	f.BoolVar(&idempotent, "idempotent", false, "succeed without writing when the path does not exist")
	return cmd
}

// modify decrypts a file, changes its first document and writes it back,
// re-encrypting unchanged values to the same ciphertext. g compares the
// file with its creation rule first (see transform).
func (a *app) modify(ctx context.Context, path string, ff *formatFlags, df *decryptFlags, g *ruleGuard, change func(sops.TreeBranch) (sops.TreeBranch, bool, error)) error {
	_, err := a.rewrite(ctx, path, ff, nil, g, func(ctx context.Context, f *sopsFile) (bool, error) {
		if err := f.decrypt(ctx, df); err != nil {
			return false, err
		}
		tree := f.tree
		if len(tree.Branches) == 0 {
			tree.Branches = sops.TreeBranches{{}}
		}
		nb, changed, err := change(tree.Branches[0])
		if err != nil {
			return false, cliapp.WithCode(cliapp.CodeGeneric, err)
		}
		if !changed {
			return false, nil
		}
		tree.Branches[0] = nb
		return true, nil
	})
	return err
}

// parseJSONValue parses a JSON value into tree values, keeping key order.
// Integral numbers become ints.
func parseJSONValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := jsonValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the value")
	}
	return v, nil
}

func jsonValue(dec *json.Decoder, depth int) (any, error) {
	if depth > 100 {
		return nil, errors.New("value nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			b := sops.TreeBranch{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				b = append(b, sops.TreeItem{Key: k, Value: v})
			}
			_, err := dec.Token()
			return b, err
		case '[':
			l := []any{}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			_, err := dec.Token()
			return l, err
		}
		return nil, errors.New("unexpected delimiter")
	case json.Number:
		s := t.String()
		if !strings.ContainsAny(s, ".eE") {
			if i, err := t.Int64(); err == nil && i >= math.MinInt && i <= math.MaxInt {
				return int(i), nil
			}
		}
		return t.Float64()
	default:
		return t, nil // string, bool, nil
	}
}
