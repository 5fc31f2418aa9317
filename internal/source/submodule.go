package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	format "github.com/go-git/go-git/v5/plumbing/format/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/lacre/lacre/internal/artifact"
)

// Bounds of a checkout with its submodules (spec.recurseSubmodules);
// variables for the tests.
var (
	// maxSubmoduleDepth is how deep submodules nest: go-git's
	// DefaultSubmoduleRecursionDepth (10), which Flux uses, recurses ten
	// times below the first level. Flux leaves deeper submodules empty;
	// lacre refuses them.
	maxSubmoduleDepth = 11
	// maxSubmodules bounds the submodules of one checkout, all levels
	// together (Flux has no bound).
	maxSubmodules = 64
)

// Bounds of a .gitmodules file: go-git's config decoder takes time
// quadratic in the number of sections (256 KiB of "[sN]" lines took 13 s),
// so their count is bounded before it runs.
const (
	maxGitmodules         = 64 << 10
	maxGitmodulesSections = 512
)

// ErrSubmodule is a submodule lacre refuses to fetch: its URL, path,
// depth or count.
var ErrSubmodule = errors.New("submodule refused")

// CheckoutRecursive is CheckoutCharging that also checks out the
// submodules the commit records (Flux's spec.recurseSubmodules), each at
// the commit of its gitlink, its files at its path, recursively up to
// maxSubmoduleDepth levels and maxSubmodules in all. The submodules' packs,
// objects and files count, with the commit's, against one lim and lease.
//
// A submodule's URL (from .gitmodules, which the repository's authors
// write) is resolved against its parent's URL when relative and must pass
// ValidateURL: no local paths, file:// or other schemes. The secretRef's
// credentials, CA and client certificate (a) go only to the scheme, host
// and port of rawURL; other hosts are fetched anonymously, and SSH
// submodules on other hosts are refused (lacre has no known_hosts for
// them). The proxy applies to every submodule. want (nil: all) says
// whether the submodule at a path (from the root) is needed: with a
// sparse checkout, those outside it are not fetched.
func CheckoutRecursive(ctx context.Context, rawURL string, ref Ref, a *Auth, lim artifact.Limits, lease *artifact.Lease, want func(path string) bool) (*Commit, error) {
	lim = lim.WithDefaults()
	sp := &spend{lease: lease}
	c, err := checkoutRef(ctx, rawURL, ref, a, lim, sp)
	if err != nil {
		return nil, err
	}
	m := &modules{root: rawURL, auth: a, lim: lim, sp: sp, want: want}
	if err := m.checkout(ctx, rawURL, c.Object, c.Files, "", 1); err != nil {
		return nil, err
	}
	return c, nil
}

// modules checks out the submodules of one checkout.
type modules struct {
	root string // spec.url: the origin a's credentials belong to
	auth *Auth
	lim  artifact.Limits
	sp   *spend
	want func(string) bool
}

// checkout fetches the submodules of commit, whose files are in files
// under prefix, at nesting level depth; parentURL is commit's repository.
func (m *modules) checkout(ctx context.Context, parentURL string, commit *object.Commit, files fstest.MapFS, prefix string, depth int) error {
	gm, ok := files[prefix+".gitmodules"]
	if !ok {
		return nil
	}
	subs, err := parseGitmodules(gm.Data)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrSubmodule, prefix+".gitmodules", err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return err
	}
	for _, s := range subs {
		full := prefix + s.path
		if m.want != nil && !m.want(full) {
			continue
		}
		entry, err := tree.FindEntry(s.path)
		if err != nil || entry.Mode != filemode.Submodule {
			return fmt.Errorf("%w: %q: .gitmodules names path %q, which is not a submodule in commit %s", ErrSubmodule, full, s.path, commit.Hash)
		}
		if depth > maxSubmoduleDepth {
			return fmt.Errorf("%w: %q: submodules nest deeper than %d levels", ErrSubmodule, full, maxSubmoduleDepth)
		}
		if m.sp.modules++; m.sp.modules > maxSubmodules {
			return fmt.Errorf("%w: %q: the checkout has more than %d submodules", ErrSubmodule, full, maxSubmodules)
		}
		subURL, err := ResolveSubmoduleURL(parentURL, s.url)
		if err != nil {
			return fmt.Errorf("%w: %q: %v", ErrSubmodule, full, err)
		}
		a, err := m.authFor(subURL)
		if err != nil {
			return fmt.Errorf("%w: %q: %v", ErrSubmodule, full, err)
		}
		sc, err := fetchCommit(ctx, subURL, entry.Hash, a, m.lim, m.sp)
		if err != nil {
			return fmt.Errorf("submodule %q (%s): %w", full, redactedURL(subURL), err)
		}
		if err := readTree(sc, m.lim, m.sp, full+"/", files); err != nil {
			return err
		}
		if err := m.checkout(ctx, subURL, sc, files, full+"/", depth+1); err != nil {
			return err
		}
	}
	return nil
}

// authFor is what of m.auth a submodule at rawURL is fetched with: all of
// it on spec.url's scheme, host and port; elsewhere only the proxy.
func (m *modules) authFor(rawURL string) (*Auth, error) {
	if sameOrigin(m.root, rawURL) {
		return m.auth, nil
	}
	if u, _ := url.Parse(rawURL); u != nil && u.Scheme == "ssh" {
		return nil, fmt.Errorf("%s is an SSH URL on another host than spec.url: the secretRef's identity and known_hosts are only for the host of spec.url", redactedURL(rawURL))
	}
	if m.auth == nil {
		return nil, nil
	}
	return &Auth{Proxy: m.auth.Proxy}, nil
}

// gitmodule is one submodule of a .gitmodules file.
type gitmodule struct{ name, path, url string }

// parseGitmodules reads a .gitmodules file, sorted by path. Where go-git
// (and so Flux) skips an entry with a suspicious name or path, lacre
// refuses the file.
func parseGitmodules(data []byte) ([]gitmodule, error) {
	if len(data) > maxGitmodules {
		return nil, fmt.Errorf("the file is larger than %s", artifact.FormatSize(maxGitmodules))
	}
	if bytes.Count(data, []byte("[")) > maxGitmodulesSections {
		return nil, fmt.Errorf("the file has more than %d '[' (sections)", maxGitmodulesSections)
	}
	cfg := format.New()
	if err := format.NewDecoder(bytes.NewReader(data)).Decode(cfg); err != nil {
		return nil, fmt.Errorf("invalid file: %v", err)
	}
	var out []gitmodule
	seen := map[string]bool{}
	for _, sub := range cfg.Section("submodule").Subsections {
		s := config.Submodule{Name: sub.Name, Path: sub.Option("path"), URL: sub.Option("url")}
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("submodule %q: %v", sub.Name, err)
		}
		if err := validTreePath(s.Path); err != nil {
			return nil, fmt.Errorf("submodule %q: path %q %v", sub.Name, s.Path, err)
		}
		if seen[s.Path] {
			return nil, fmt.Errorf("submodule %q: path %q is named twice", sub.Name, s.Path)
		}
		seen[s.Path] = true
		out = append(out, gitmodule{name: s.Name, path: s.Path, url: s.URL})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

// validTreePath accepts a clean relative path inside the tree, without a
// .git component.
func validTreePath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.ContainsAny(p, "\\\x00") {
		return errors.New("is not a clean relative path")
	}
	for _, c := range strings.Split(p, "/") {
		if c == "." || c == ".." || strings.EqualFold(c, ".git") {
			return errors.New("has a '.', '..' or '.git' component")
		}
	}
	return nil
}

// ResolveSubmoduleURL is the URL a submodule's url in .gitmodules names,
// with parent the URL of the repository holding that .gitmodules. As
// go-git (and so Flux) does, a URL that is neither absolute nor scp-like
// (user@host:path) is relative: joined to parent's path ("../lib.git"
// next to parent, "./lib" under it). An scp-like URL becomes its ssh://
// form. The result must pass ValidateURL: local paths, file:// and remote
// helpers (transport::address) are refused.
func ResolveSubmoduleURL(parent, raw string) (string, error) {
	switch {
	case len(raw) > maxProxyURL:
		return "", fmt.Errorf("%w: the URL is longer than %d characters", ErrInvalidURL, maxProxyURL)
	case strings.Contains(raw, "::"):
		return "", fmt.Errorf("%w %s: remote helper URLs (transport::address) are not allowed", ErrInvalidURL, redactedURL(raw))
	case strings.Contains(raw, "://"):
	case strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "\\"):
		return "", fmt.Errorf("%w %s: a local path is not allowed", ErrInvalidURL, redactedURL(raw))
	default:
		if ep, err := transport.NewEndpoint(raw); err == nil && ep.Protocol == "ssh" {
			raw = ep.String() // user@host:path
			break
		}
		u, err := url.Parse(parent)
		if err != nil {
			return "", fmt.Errorf("%w: parent URL: %v", ErrInvalidURL, err)
		}
		u.Path, u.RawPath = path.Join("/", u.Path, raw), ""
		raw = u.String()
	}
	if err := ValidateURL(raw); err != nil {
		return "", fmt.Errorf("%w %s: scheme must be http, https or ssh", ErrInvalidURL, redactedURL(raw))
	}
	return raw, nil
}

// sameOrigin reports whether two URLs have the same scheme, host and port.
func sameOrigin(a, b string) bool {
	ua, err := url.Parse(a)
	if err != nil {
		return false
	}
	ub, err := url.Parse(b)
	if err != nil {
		return false
	}
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		return map[string]string{"http": "80", "https": "443", "ssh": "22"}[u.Scheme]
	}
	return ua.Scheme == ub.Scheme && strings.EqualFold(ua.Hostname(), ub.Hostname()) && port(ua) == port(ub)
}

// redactedURL is raw quoted for a message, without a password.
func redactedURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return fmt.Sprintf("%q", u.Redacted())
	}
	return fmt.Sprintf("%q", raw)
}

// fetchCommit fetches commit hash of the repository at rawURL into
// bounded storage: shallow through a branch or tag at it, else the commit
// itself where the server allows that, else every branch and tag.
func fetchCommit(ctx context.Context, rawURL string, hash plumbing.Hash, a *Auth, lim artifact.Limits, sp *spend) (*object.Commit, error) {
	refs, err := listRefs(ctx, rawURL, a)
	if err != nil {
		return nil, err
	}
	repo, st, err := boundedRepo(rawURL, lim, sp)
	if err != nil {
		return nil, err
	}
	fo, err := fetchOptions(rawURL, a)
	if err != nil {
		return nil, err
	}
	fo.Depth = 1
	if name := refAt(refs, hash); name != "" {
		fo.RefSpecs = []config.RefSpec{config.RefSpec("+" + name + ":" + name)}
		err = fetch(ctx, repo, st, fo, rawURL)
	} else {
		fo.RefSpecs = []config.RefSpec{config.RefSpec(hash.String() + ":" + hash.String())}
		if err = fetch(ctx, repo, st, fo, rawURL); errors.Is(err, git.ErrExactSHA1NotSupported) {
			fo.RefSpecs, fo.Depth = allRefs, 0
			err = fetch(ctx, repo, st, fo, rawURL)
		}
	}
	if err != nil {
		return nil, err
	}
	c, err := repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("%w: commit %s is not on a branch or tag of the submodule's repository", ErrRefNotFound, hash)
	}
	return c, nil
}

// refAt is the name of a branch or tag at hash (an annotated tag by its
// peeled commit), or "".
func refAt(refs []*plumbing.Reference, hash plumbing.Hash) string {
	var names []string
	for _, r := range refs {
		n := strings.TrimSuffix(string(r.Name()), "^{}")
		if r.Type() == plumbing.HashReference && r.Hash() == hash && (strings.HasPrefix(n, "refs/heads/") || strings.HasPrefix(n, "refs/tags/")) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[0]
}
