// Package source fetches Git repositories (go-git, in memory) and turns a
// commit into an artifact.
package source

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/crypto/ssh"

	"github.com/lacre/lacre/internal/artifact"
)

// Ref is the reference to check out; precedence commit > name > semver >
// tag > branch, as Flux's. The zero Ref means branch master.
type Ref struct {
	Branch, Tag, SemVer, Name, Commit string
}

// Auth holds credentials from a GitRepository's secretRef, by Flux's key
// names: username/password or bearerToken and ca.crt for HTTPS; identity,
// known_hosts and password for SSH.
type Auth struct {
	Username, Password string
	BearerToken        string
	CAFile             []byte
	Identity           []byte
	KnownHosts         []byte
	// TLSCert and TLSKey (tls.crt, tls.key): the HTTPS client certificate.
	TLSCert, TLSKey []byte
	// Proxy is from spec.proxySecretRef (ProxyFromSecret).
	Proxy transport.ProxyOptions
}

// AuthFromSecret reads Flux's secret keys.
func AuthFromSecret(data map[string][]byte) *Auth {
	if data == nil {
		return nil
	}
	a := &Auth{
		Username:    string(data["username"]),
		Password:    string(data["password"]),
		BearerToken: string(data["bearerToken"]),
		CAFile:      data["ca.crt"],
		Identity:    data["identity"],
		KnownHosts:  data["known_hosts"],
		TLSCert:     data["tls.crt"],
		TLSKey:      data["tls.key"],
	}
	if a.CAFile == nil {
		a.CAFile = data["caFile"]
	}
	return a
}

// Errors a caller classifies on.
var (
	ErrInvalidURL    = errors.New("invalid repository URL")
	ErrAuth          = errors.New("authentication failed")
	ErrRefNotFound   = errors.New("reference not found")
	ErrInvalidRef    = errors.New("invalid reference")
	ErrInvalidSecret = errors.New("invalid credentials secret")
	ErrRepoNotFound  = errors.New("repository not found")
)

// Commit is a resolved, checked-out commit.
type Commit struct {
	Hash     string // 40 hex
	Revision string // Flux's form: main@sha1:<hex>, v1.0.0@sha1:<hex>, sha1:<hex>
	Files    fstest.MapFS
	// Object is the commit, Tag the annotated tag of a tag checkout (or
	// nil): their signatures are checked by spec.verify (verify.go).
	Object *object.Commit
	Tag    *object.Tag
}

// ValidateURL checks a repository URL as Flux's CRD pattern does.
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w %q: must be http://, https:// or ssh://host/path", ErrInvalidURL, raw)
	}
	switch u.Scheme {
	case "http", "https", "ssh":
		return nil
	}
	return fmt.Errorf("%w %q: scheme must be http, https or ssh", ErrInvalidURL, raw)
}

func authMethod(rawURL string, a *Auth) (transport.AuthMethod, error) {
	if a == nil {
		return nil, nil
	}
	u, _ := url.Parse(rawURL)
	if u != nil && u.Scheme == "ssh" {
		if len(a.Identity) == 0 {
			return nil, nil
		}
		user := "git"
		if u.User != nil && u.User.Username() != "" {
			user = u.User.Username()
		}
		pk, err := gitssh.NewPublicKeys(user, a.Identity, a.Password)
		if err != nil {
			return nil, fmt.Errorf("%w: identity: %v", ErrInvalidSecret, err)
		}
		if len(a.KnownHosts) == 0 {
			return nil, fmt.Errorf("%w: known_hosts is required for SSH", ErrInvalidSecret)
		}
		cb, err := knownHostsCallback(a.KnownHosts)
		if err != nil {
			return nil, err
		}
		pk.HostKeyCallback = cb
		return pk, nil
	}
	switch {
	case a.BearerToken != "":
		return &githttp.TokenAuth{Token: a.BearerToken}, nil
	case a.Username != "" || a.Password != "":
		return &githttp.BasicAuth{Username: a.Username, Password: a.Password}, nil
	}
	return nil, nil
}

// knownHostsCallback checks host keys against known_hosts content, in
// memory.
func knownHostsCallback(data []byte) (ssh.HostKeyCallback, error) {
	type entry struct {
		hosts []string
		key   ssh.PublicKey
	}
	var entries []entry
	rest := data
	for len(bytes.TrimSpace(rest)) > 0 {
		_, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: known_hosts: %v", ErrInvalidSecret, err)
		}
		entries = append(entries, entry{hosts, key})
		rest = r
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		host, port, err := net.SplitHostPort(hostname)
		if err != nil {
			host, port = hostname, "22"
		}
		names := []string{host, "[" + host + "]:" + port}
		if port == "22" {
			names = append(names, host)
		}
		for _, e := range entries {
			for _, h := range e.hosts {
				for _, n := range names {
					if h == n && bytes.Equal(e.key.Marshal(), key.Marshal()) {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("host key of %s is not in known_hosts", hostname)
	}, nil
}

func caBundle(a *Auth) []byte {
	if a == nil || len(a.CAFile) == 0 {
		return nil
	}
	if x509.NewCertPool().AppendCertsFromPEM(a.CAFile) {
		return a.CAFile
	}
	return nil
}

func classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%w: %v", ErrAuth, err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%w: %v", ErrRepoNotFound, err)
	case strings.Contains(err.Error(), "unable to authenticate"), strings.Contains(err.Error(), "ssh: handshake failed"):
		return fmt.Errorf("%w: %v", ErrAuth, err)
	case errors.Is(err, plumbing.ErrReferenceNotFound), strings.Contains(err.Error(), "couldn't find remote ref"):
		return fmt.Errorf("%w: %v", ErrRefNotFound, err)
	}
	return err
}

// LsRemote resolves a ref to a commit hash without cloning, for the no-op
// check. Semver and commit refs need the tag list or the commit itself, so
// they are resolved from the listed refs too.
func LsRemote(ctx context.Context, rawURL string, ref Ref, a *Auth) (hash, revision string, err error) {
	refs, err := listRefs(ctx, rawURL, a)
	if err != nil {
		return "", "", err
	}
	return resolveFromList(refs, ref)
}

// listRefs lists the references of the repository at rawURL, annotated
// tags with their peeled commits.
func listRefs(ctx context.Context, rawURL string, a *Auth) ([]*plumbing.Reference, error) {
	if err := ValidateURL(rawURL); err != nil {
		return nil, err
	}
	am, err := authMethod(rawURL, a)
	if err != nil {
		return nil, err
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{rawURL}})
	cert, key, err := clientCert(a)
	if err != nil {
		return nil, err
	}
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: am, CABundle: caBundle(a), PeelingOption: git.AppendPeeled,
		ClientCert: cert, ClientKey: key, ProxyOptions: proxyOptions(a)})
	if err != nil {
		return nil, classify(err)
	}
	return refs, nil
}

func resolveFromList(refs []*plumbing.Reference, ref Ref) (hash, revision string, err error) {
	byName := map[plumbing.ReferenceName]plumbing.Hash{}
	for _, r := range refs {
		if r.Type() == plumbing.HashReference {
			byName[r.Name()] = r.Hash()
		}
	}
	// Annotated tags: prefer the peeled commit.
	peeled := func(name plumbing.ReferenceName) (plumbing.Hash, bool) {
		if h, ok := byName[plumbing.ReferenceName(string(name)+"^{}")]; ok {
			return h, true
		}
		h, ok := byName[name]
		return h, ok
	}
	switch {
	case ref.Commit != "":
		if ref.Branch != "" {
			if _, ok := byName[plumbing.NewBranchReferenceName(ref.Branch)]; !ok {
				return "", "", fmt.Errorf("%w: branch %q", ErrRefNotFound, ref.Branch)
			}
			return ref.Commit, ref.Branch + "@sha1:" + ref.Commit, nil
		}
		return ref.Commit, "sha1:" + ref.Commit, nil
	case ref.Name != "":
		h, ok := peeled(plumbing.ReferenceName(ref.Name))
		if !ok {
			return "", "", fmt.Errorf("%w: %q", ErrRefNotFound, ref.Name)
		}
		return h.String(), ref.Name + "@sha1:" + h.String(), nil
	case ref.SemVer != "":
		c, err := semver.NewConstraint(ref.SemVer)
		if err != nil {
			return "", "", fmt.Errorf("%w: semver %q: %v", ErrInvalidRef, ref.SemVer, err)
		}
		type tv struct {
			tag string
			v   *semver.Version
		}
		var matches []tv
		for name := range byName {
			if !name.IsTag() || strings.HasSuffix(string(name), "^{}") {
				continue
			}
			tag := name.Short()
			v, err := semver.NewVersion(tag)
			if err != nil || !c.Check(v) {
				continue
			}
			matches = append(matches, tv{tag, v})
		}
		if len(matches) == 0 {
			return "", "", fmt.Errorf("%w: no tag matches semver %q", ErrRefNotFound, ref.SemVer)
		}
		sort.Slice(matches, func(i, j int) bool { return matches[i].v.GreaterThan(matches[j].v) })
		h, _ := peeled(plumbing.NewTagReferenceName(matches[0].tag))
		return h.String(), matches[0].tag + "@sha1:" + h.String(), nil
	case ref.Tag != "":
		h, ok := peeled(plumbing.NewTagReferenceName(ref.Tag))
		if !ok {
			return "", "", fmt.Errorf("%w: tag %q", ErrRefNotFound, ref.Tag)
		}
		return h.String(), ref.Tag + "@sha1:" + h.String(), nil
	}
	branch := ref.Branch
	if branch == "" {
		branch = "master"
	}
	h, ok := byName[plumbing.NewBranchReferenceName(branch)]
	if !ok {
		return "", "", fmt.Errorf("%w: branch %q", ErrRefNotFound, branch)
	}
	return h.String(), branch + "@sha1:" + h.String(), nil
}

// Checkout fetches the commit a ref resolves to into memory and returns its
// files. Branches and tags are fetched shallow (depth 1). lim bounds the
// checkout (artifact.ErrTooLarge): the fetched objects by their declared
// sizes before they are inflated, then the tree's files by count, each
// file and their total size, from the tree's entries before any content
// is read.
func Checkout(ctx context.Context, rawURL string, ref Ref, a *Auth, lim artifact.Limits) (*Commit, error) {
	return CheckoutCharging(ctx, rawURL, ref, a, lim, nil)
}

// CheckoutWorst is the most bytes one checkout under lim charges: the
// fetched packs, the objects inflated from them and the files copied out
// of them, each at most lim.MaxTotalSize (with its submodules: all their
// packs, objects and files together).
func CheckoutWorst(lim artifact.Limits) int64 {
	return 3 * lim.WithDefaults().MaxTotalSize
}

// CheckoutCharging is Checkout charging lease (nil: nothing) with the
// bytes it holds before it holds them: the pack as it arrives, its
// objects' inflated sizes (from their headers) before they are inflated,
// the files' sizes (from the tree) before they are copied. When the
// lease cannot grow, it drops everything and returns an error wrapping
// artifact.ErrBudget (for artifact.Budget.Within to wait and retry). The
// charge covers the returned files until the lease is released.
func CheckoutCharging(ctx context.Context, rawURL string, ref Ref, a *Auth, lim artifact.Limits, lease *artifact.Lease) (*Commit, error) {
	lim = lim.WithDefaults()
	return checkoutRef(ctx, rawURL, ref, a, lim, &spend{lease: lease})
}

func checkoutRef(ctx context.Context, rawURL string, ref Ref, a *Auth, lim artifact.Limits, sp *spend) (*Commit, error) {
	hash, revision, err := LsRemote(ctx, rawURL, ref, a)
	if err != nil {
		return nil, err
	}
	repo, st, err := boundedRepo(rawURL, lim, sp)
	if err != nil {
		return nil, err
	}
	var tagName plumbing.ReferenceName
	fo, err := fetchOptions(rawURL, a)
	if err != nil {
		return nil, err
	}
	switch {
	case ref.Commit != "" && ref.Branch != "":
		fo.RefSpecs = []config.RefSpec{config.RefSpec("+refs/heads/" + ref.Branch + ":refs/remotes/origin/" + ref.Branch)}
	case ref.Commit != "":
		fo.RefSpecs = allRefs
	default:
		name := plumbing.ReferenceName(ref.Name)
		if ref.Name == "" {
			head, _, _ := strings.Cut(revision, "@sha1:")
			switch {
			case ref.SemVer != "" || ref.Tag != "":
				name = plumbing.NewTagReferenceName(head)
			default:
				name = plumbing.NewBranchReferenceName(head)
			}
		}
		fo.RefSpecs = []config.RefSpec{config.RefSpec("+" + string(name) + ":" + string(name))}
		fo.Depth = 1
		tagName = name
	}
	if err := fetch(ctx, repo, st, fo, rawURL); err != nil {
		return nil, err
	}
	commit, err := repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		// An annotated tag fetched without peeling: resolve through the tag.
		if tag, terr := repo.TagObject(plumbing.NewHash(hash)); terr == nil {
			commit, err = tag.Commit()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: commit %s: %v", ErrRefNotFound, hash, err)
		}
	}
	if ref.Commit != "" && ref.Branch != "" {
		// The pinned commit must be on the branch.
		tip, err := repo.Reference(plumbing.NewRemoteReferenceName("origin", ref.Branch), true)
		if err == nil {
			tipCommit, err := repo.CommitObject(tip.Hash())
			if err != nil {
				return nil, err
			}
			if ok, _ := commit.IsAncestor(tipCommit); !ok && tipCommit.Hash != commit.Hash {
				return nil, fmt.Errorf("%w: commit %s is not on branch %q", ErrRefNotFound, hash, ref.Branch)
			}
		}
	}
	files := fstest.MapFS{}
	if err := readTree(commit, lim, sp, "", files); err != nil {
		return nil, err
	}
	return &Commit{Hash: commit.Hash.String(), Revision: strings.Replace(revision, hash, commit.Hash.String(), 1), Files: files,
		Object: commit, Tag: annotatedTag(repo, tagName)}, nil
}

// allRefs are the refspecs of every branch and tag.
var allRefs = []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}

// boundedRepo is an empty in-memory repository on bounded storage with
// rawURL as its origin.
func boundedRepo(rawURL string, lim artifact.Limits, sp *spend) (*git.Repository, *boundedStorage, error) {
	st := &boundedStorage{Storage: memory.NewStorage(), lim: lim, sp: sp}
	repo, err := git.InitWithOptions(st, nil, git.InitOptions{DefaultBranch: plumbing.Master})
	if err != nil {
		return nil, nil, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{rawURL}}); err != nil {
		return nil, nil, err
	}
	return repo, st, nil
}

// fetchOptions are the options of a fetch from rawURL with a's
// credentials, CA, client certificate and proxy.
func fetchOptions(rawURL string, a *Auth) (*git.FetchOptions, error) {
	am, err := authMethod(rawURL, a)
	if err != nil {
		return nil, err
	}
	cert, key, err := clientCert(a)
	if err != nil {
		return nil, err
	}
	return &git.FetchOptions{RemoteName: "origin", Auth: am, CABundle: caBundle(a), Tags: git.NoTags,
		ClientCert: cert, ClientKey: key, ProxyOptions: proxyOptions(a)}, nil
}

// fetch runs fo, classifying its error (artifact.ErrBudget when the
// storage could not charge the lease).
func fetch(ctx context.Context, repo *git.Repository, st *boundedStorage, fo *git.FetchOptions, rawURL string) error {
	if err := repo.FetchContext(ctx, fo); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if st.starved {
			return fmt.Errorf("%w (fetching %q)", artifact.ErrBudget, rawURL)
		}
		return classify(err)
	}
	return nil
}

// readTree reads a commit's regular files into files, under prefix (a
// submodule's path and "/", or ""). A first pass checks lim on the files'
// count and sizes (from their object headers), with those sp has counted
// already, so a tree over the limits is refused before any content is
// copied: one blob named by thousands of paths counts once per path. The
// lease is charged the files' total before they are copied.
func readTree(commit *object.Commit, lim artifact.Limits, sp *spend, prefix string, files fstest.MapFS) error {
	tree, err := commit.Tree()
	if err != nil {
		return err
	}
	count, total := sp.files, sp.fileBytes
	err = tree.Files().ForEach(func(f *object.File) error {
		if count++; count > lim.MaxFiles {
			return fmt.Errorf("%w: checkout has more than %d files", artifact.ErrTooLarge, lim.MaxFiles)
		}
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil
		}
		if f.Size > lim.MaxFileSize {
			return fmt.Errorf("%w: %q is %d bytes, more than %s", artifact.ErrTooLarge, prefix+f.Name, f.Size, artifact.FormatSize(lim.MaxFileSize))
		}
		if total += f.Size; total > lim.MaxTotalSize {
			return fmt.Errorf("%w: checkout exceeds %s (at %q)", artifact.ErrTooLarge, artifact.FormatSize(lim.MaxTotalSize), prefix+f.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := sp.lease.Grow(total - sp.fileBytes); err != nil {
		return err
	}
	sp.files, sp.fileBytes = count, total
	return tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil // symlinks are not part of artifacts; submodules are added by checkoutSubmodules
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		mode := fstest.MapFile{Data: data, Mode: 0o644}
		if f.Mode == filemode.Executable {
			mode.Mode = 0o755
		}
		files[prefix+f.Name] = &mode
		return nil
	})
}
