package keysource

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"filippo.io/age/plugin"

	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
)

// ageOptions allow age plugins, as sops does; a plugin talks to the user
// through the terminal, its messages going to stderr.
func (b *Source) ageOptions() agekeys.Options {
	printf := func(format string, v ...any) { fmt.Fprintf(b.stderr, "lacre: age: "+format+"\n", v...) }
	warnf := func(format string, v ...any) { fmt.Fprintf(b.stderr, "lacre: age: warning: "+format+"\n", v...) }
	return agekeys.Options{Plugins: true, UI: plugin.NewTerminalUI(printf, warnf)}
}

// ageLoader collects age identities and the problems met.
type ageLoader struct {
	b    *Source
	ids  []keys.Identity
	errs []error
}

func (l *ageLoader) text(source string, data []byte) {
	got, err := l.b.ageOptions().ParseIdentities(bytes.NewReader(data))
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("age identities from %s: %w", source, err))
		return
	}
	l.ids = append(l.ids, got...)
}

func (l *ageLoader) sshFile(path string, required bool) {
	data, err := ReadBounded(path, MaxKeyFileSize)
	if err != nil {
		if required || !errors.Is(err, os.ErrNotExist) {
			l.errs = append(l.errs, fmt.Errorf("ssh key %s: %v", path, err))
		}
		return
	}
	id, err := agekeys.ParseSSHIdentity(data)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("ssh key %s: %w", path, err))
		return
	}
	l.ids = append(l.ids, id)
}

// loadAgeIdentities collects age identities from every source sops 3.13
// reads, in its order: SOPS_AGE_SSH_PRIVATE_KEY_FILE,
// SOPS_AGE_SSH_PRIVATE_KEY_CMD, ~/.ssh/id_ed25519 and ~/.ssh/id_rsa,
// SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, SOPS_AGE_KEY_CMD and the default
// keys.txt. Plugin identities go last, as age tries them: a plugin runs
// only when no native key matched.
func (b *Source) loadAgeIdentities() ([]keys.Identity, []error) {
	env := b.env
	l := &ageLoader{b: b}
	if p := env("SOPS_AGE_SSH_PRIVATE_KEY_FILE"); p != "" {
		l.sshFile(p, true)
	}
	if c := env("SOPS_AGE_SSH_PRIVATE_KEY_CMD"); c != "" {
		l.ids = append(l.ids, &cmdIdentity{b: b, env: "SOPS_AGE_SSH_PRIVATE_KEY_CMD", cmd: c, ssh: true})
	}
	if home, err := os.UserHomeDir(); err == nil {
		l.sshFile(filepath.Join(home, ".ssh", "id_ed25519"), false)
		l.sshFile(filepath.Join(home, ".ssh", "id_rsa"), false)
	}
	if v := env("SOPS_AGE_KEY"); v != "" {
		l.text("SOPS_AGE_KEY", ageKeyWords(v))
	}
	if p := env("SOPS_AGE_KEY_FILE"); p != "" {
		if data, err := ReadBounded(p, MaxKeyFileSize); err != nil {
			l.errs = append(l.errs, fmt.Errorf("SOPS_AGE_KEY_FILE: %v", err))
		} else {
			l.text(p, data)
		}
	}
	if c := env("SOPS_AGE_KEY_CMD"); c != "" {
		l.ids = append(l.ids, &cmdIdentity{b: b, env: "SOPS_AGE_KEY_CMD", cmd: c})
	}
	if dir := userConfigDir(env); dir != "" {
		p := agekeys.DefaultKeysFile(dir)
		if data, err := ReadBounded(p, MaxKeyFileSize); err == nil {
			l.text(p, data)
		} else if !errors.Is(err, os.ErrNotExist) {
			l.errs = append(l.errs, fmt.Errorf("%s: %v", p, err))
		}
	}
	return pluginsLast(l.ids), l.errs
}

func pluginsLast(ids []keys.Identity) []keys.Identity {
	var native, plugins []keys.Identity
	for _, id := range ids {
		if a, ok := id.(*agekeys.Identity); ok && a.Plugin() != "" {
			plugins = append(plugins, id)
		} else {
			native = append(native, id)
		}
	}
	return append(native, plugins...)
}

// ageKeyWords reads SOPS_AGE_KEY as sops does: lines that are empty or
// start with '#' are skipped (so `SOPS_AGE_KEY="$(cat keys.txt)"` works),
// and every word of the other lines is an identity. It returns them one
// per line, the keys.txt format.
func ageKeyWords(v string) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(strings.NewReader(v))
	sc.Buffer(make([]byte, 64*1024), MaxKeyFileSize)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, w := range strings.Fields(line) {
			out.WriteString(w)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// cmdIdentity runs SOPS_AGE_KEY_CMD (age identities) or
// SOPS_AGE_SSH_PRIVATE_KEY_CMD (an SSH private key) when an age stanza is
// to be unwrapped, with SOPS_AGE_RECIPIENT set to the stanza's recipient,
// as sops does: once per recipient. The command runs through sh -c.
type cmdIdentity struct {
	b        *Source
	env, cmd string
	ssh      bool

	mu   sync.Mutex
	done map[string]cmdResult
}

type cmdResult struct {
	ids []keys.Identity
	err error
}

var _ keys.Identity = (*cmdIdentity)(nil)

// Describe implements keys.Describer: the variable, not the command (it
// may hold a secret).
func (c *cmdIdentity) Describe() string { return "age identities from " + c.env }

// StanzaType implements keys.Typed.
func (c *cmdIdentity) StanzaType() string { return keys.TypeAge }

// Unwrap runs the command for the stanza's recipient and tries what it
// printed.
func (c *cmdIdentity) Unwrap(ctx context.Context, s *keys.Stanza) ([]byte, error) {
	if s.Type != keys.TypeAge {
		return nil, keys.ErrIncorrectIdentity
	}
	res := c.identities(ctx, s.Field("recipient"))
	if res.err != nil {
		return nil, res.err
	}
	var errs []error
	for _, id := range res.ids {
		k, err := id.Unwrap(ctx, s)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, keys.ErrIncorrectIdentity) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, keys.ErrIncorrectIdentity
}

func (c *cmdIdentity) identities(ctx context.Context, recipient string) cmdResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.done[recipient]; ok {
		return r
	}
	r := c.run(ctx, recipient)
	if c.done == nil {
		c.done = map[string]cmdResult{}
	}
	c.done[recipient] = r
	return r
}

func (c *cmdIdentity) run(ctx context.Context, recipient string) cmdResult {
	cmd := exec.CommandContext(ctx, "sh", "-c", c.cmd)
	cmd.Env = append(os.Environ(), "SOPS_AGE_RECIPIENT="+recipient)
	cmd.Stderr = c.b.stderr
	var out boundedBuffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return cmdResult{err: fmt.Errorf("%s failed: %v", c.env, err)}
	}
	if out.over {
		return cmdResult{err: fmt.Errorf("%s printed more than %d bytes", c.env, MaxKeyFileSize)}
	}
	if c.ssh {
		id, err := agekeys.ParseSSHIdentity(out.Bytes())
		if err != nil {
			return cmdResult{err: fmt.Errorf("the SSH key printed by %s: %w", c.env, err)}
		}
		return cmdResult{ids: []keys.Identity{id}}
	}
	ids, err := c.b.ageOptions().ParseIdentities(bytes.NewReader(out.Bytes()))
	if err != nil {
		return cmdResult{err: fmt.Errorf("age identities from %s: %w", c.env, err)}
	}
	return cmdResult{ids: pluginsLast(ids)}
}

// boundedBuffer keeps at most MaxKeyFileSize bytes of a command's output.
type boundedBuffer struct {
	bytes.Buffer
	over bool
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if w.Len()+len(p) > MaxKeyFileSize {
		w.over = true
		return len(p), nil
	}
	return w.Buffer.Write(p)
}
