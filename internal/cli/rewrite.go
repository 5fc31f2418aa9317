package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// sopsFile is an encrypted file opened by a command: its formats, its
// tree as loaded (values still encrypted) and, once decrypted or given a
// new data key, the cipher its values are encrypted with when it is saved.
type sopsFile struct {
	a       *app
	s       *session
	path    string
	in, out formats.Format
	tree    *sops.Tree
	cipher  *sops.Cipher
}

// openFile loads the encrypted file at path. The format comes from ff;
// with s nil, the session is loaded once the format is known.
func (a *app) openFile(path string, ff *formatFlags, s *session) (*sopsFile, error) {
	in, out, err := ff.formats(path)
	if err != nil {
		return nil, err
	}
	if s == nil {
		if s, err = a.newSession(); err != nil {
			return nil, err
		}
	}
	tree, err := a.loadEncrypted(path, in, s.storeOpts)
	if err != nil {
		return nil, err
	}
	return &sopsFile{a: a, s: s, path: path, in: in, out: out, tree: tree}, nil
}

// loadEncrypted reads and parses an encrypted file.
func (a *app) loadEncrypted(path string, in formats.Format, storeOpts formats.Options) (*sops.Tree, error) {
	data, err := a.readInput(path)
	if err != nil {
		return nil, err
	}
	// data is this function's own buffer and never changes: the tree may
	// point into it instead of copying it.
	tree, err := sopsfile.LoadView(data, in, storeOpts)
	if err != nil {
		// sops exits 1 for an encrypted file it cannot load, one with
		// no document included.
		return nil, cliapp.WithCode(cliapp.CodeGeneric, err)
	}
	tree.FilePath = path
	return tree, nil
}

func (f *sopsFile) order(df *decryptFlags) []string {
	return keysource.Order(df.decryptionOrder, f.a.Getenv)
}

// store is the store of the file's input format.
func (f *sopsFile) store() sops.Store { return formats.NewStore(f.in, f.s.storeOpts) }

// decrypt unwraps the data key and decrypts the values in place; saving
// encrypts them again with the same data key, so that unchanged values
// keep their ciphertext.
func (f *sopsFile) decrypt(ctx context.Context, df *decryptFlags) error {
	c, _, err := sopsfile.DecryptTree(ctx, f.tree, f.s.keys.Identities(), f.order(df), df.ignoreMAC)
	if err != nil {
		return keyError(err, f.s.keys)
	}
	f.cipher = c
	return nil
}

// decryptOnly is decrypt for commands that do not save the file.
func (f *sopsFile) decryptOnly(ctx context.Context, df *decryptFlags) error {
	b := f.s.keys
	return keyError(sopsfile.DecryptTreeOnly(ctx, f.tree, b.Identities(), f.order(df), df.ignoreMAC), b)
}

// dataKey unwraps the data key without decrypting the values.
func (f *sopsFile) dataKey(ctx context.Context, df *decryptFlags) ([]byte, error) {
	m := f.tree.Metadata
	return f.s.keys.DataKey(ctx, m.KeyGroups, m.ShamirThreshold, f.order(df))
}

// rewrap replaces the file's master keys: dataKey wrapped for groups.
func (f *sopsFile) rewrap(ctx context.Context, dataKey []byte, groups [][]keys.Recipient, threshold int) error {
	kg, th, err := keys.WrapGroups(ctx, dataKey, groups, threshold)
	if err != nil {
		return err
	}
	f.tree.Metadata.KeyGroups, f.tree.Metadata.ShamirThreshold = kg, th
	return nil
}

// encode encrypts the values again, if they were decrypted, and emits the
// file in its output format.
func (f *sopsFile) encode() ([]byte, error) {
	if f.cipher != nil {
		if err := f.tree.Encrypt(f.cipher); err != nil {
			return nil, cliapp.WithCode(cliapp.CodeErrorEncryptingTree, err)
		}
	}
	return emitEncrypted(f.path, f.out, f.s.storeOpts, f.tree)
}

// readBackLimit is the size of the largest encrypted file lacre reads
// (a variable for tests).
var readBackLimit = formats.MaxSize

// emitEncrypted emits the encrypted file name in format out, refusing a
// result that lacre could not read back (see readBackLimit): written in
// place, it would replace a file that can be decrypted with one that
// cannot.
func emitEncrypted(name string, out formats.Format, opts formats.Options, tree *sops.Tree) ([]byte, error) {
	res, err := formats.NewStore(out, opts).EmitEncryptedFile(*tree)
	if err != nil {
		return nil, cliapp.WithCode(cliapp.CodeErrorDumpingTree, err)
	}
	if max := min(readBackLimit(out), maxInputSize); len(res) > max {
		return nil, cliapp.Codef(cliapp.CodeCouldNotWriteOutput, "%s: the encrypted file would be %d bytes, more than the %d bytes lacre can read back; nothing was written", name, len(res), max)
	}
	return res, nil
}

// change changes an opened file: its values (after f.decrypt) or its
// master keys (after f.dataKey). It returns false when there is nothing to
// save.
type change func(ctx context.Context, f *sopsFile) (bool, error)

// transform is the one open → change → save sequence of the commands that
// change encrypted files: it opens path (see openFile), compares it with
// its creation rule (g.check; g nil compares nothing), applies ch, and
// returns the file encrypted again, or false when ch changed nothing.
func (a *app) transform(ctx context.Context, path string, ff *formatFlags, s *session, g *ruleGuard, ch change) ([]byte, bool, error) {
	f, err := a.openFile(path, ff, s)
	if err != nil {
		return nil, false, err
	}
	if err := g.check(f); err != nil {
		return nil, false, err
	}
	changed, err := ch(ctx, f)
	if err != nil || !changed {
		return nil, false, err
	}
	out, err := f.encode()
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// rewrite is transform writing the file back in place, atomically. It
// reports whether it wrote.
func (a *app) rewrite(ctx context.Context, path string, ff *formatFlags, s *session, g *ruleGuard, ch change) (bool, error) {
	out, changed, err := a.transform(ctx, path, ff, s, g, ch)
	if err != nil || !changed {
		return false, err
	}
	return true, writeFile(path, out)
}

// keyError adds the problems met loading keys to a failure to get the data
// key.
func keyError(err error, b *keysource.Source) error {
	if err == nil || cliapp.CodeFor(err) != cliapp.CodeCouldNotRetrieveKey {
		return err
	}
	if problems := b.Problems(); len(problems) > 0 {
		var sb strings.Builder
		sb.WriteString(err.Error())
		sb.WriteString("\nproblems loading keys:")
		for _, e := range problems {
			sb.WriteString("\n  - " + e.Error())
		}
		return cliapp.WithCode(cliapp.CodeCouldNotRetrieveKey, errors.New(sb.String()))
	}
	return err
}
