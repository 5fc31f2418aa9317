// Package build turns a source artifact into Kubernetes objects: it
// decrypts SOPS-encrypted files, runs kustomize, and applies the
// Kustomization's overlays. Everything happens on an in-memory file
// system: decrypted secrets never touch the disk. The controller and the
// CLI's build and diff commands share it. build.go runs a build,
// lazyfs.go is its file system, decrypt.go decrypts within it,
// kustomization.go prepares the kustomization, substitute.go runs
// postBuild substitutions. Errors that may quote a file are shown through
// internal/redact.
package build

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/kubesecret"
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/keys"
)

// MaxEncryptedFileSize bounds each encrypted file (Flux: 5 MiB).
const MaxEncryptedFileSize = 5 << 20

const root = "/src"

var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Options describe one build.
type Options struct {
	// Path is the directory in the artifact ("" or "./" for the root).
	Path string
	// Spec supplies targetNamespace, namePrefix, nameSuffix, patches,
	// images, components and commonMetadata.
	Spec kustomizev1.KustomizationSpec
	// Decrypt enables SOPS decryption with Identities.
	Decrypt         bool
	Identities      []keys.Identity
	DecryptionOrder []string
	// RequireEncryptedSecrets refuses Secret manifests stored in Git without
	// SOPS encryption, and every built Secret with a value that did not
	// come out of decryption (kubesecret.Unproven).
	RequireEncryptedSecrets bool
	// Dirs, when set, are the artifact's directories (artifact.Dirs), so
	// a build does not compute them again.
	Dirs map[string]bool
	// AllowRemote lets kustomize fetch remote bases and resources (git
	// repositories, http(s) URLs), as Flux does without --no-remote-bases.
	// Off, every form kustomize would fetch is refused before it runs.
	AllowRemote bool
	// KeepEncrypted returns objects that still hold SOPS metadata as they
	// are instead of refusing them (for the CLI's build and diff without
	// decryption). The controller never sets it.
	KeepEncrypted bool
}

// ErrPlaintextSecret is returned, with RequireEncryptedSecrets, for a
// Secret committed in plain text.
var ErrPlaintextSecret = errors.New("holds a Kubernetes Secret that is not SOPS-encrypted")

// ErrPathNotFound is returned when Options.Path is not a directory of the
// artifact (Flux's message; an existing directory with no manifests builds
// to nothing instead).
var ErrPathNotFound = errors.New("kustomization path not found")

// A FileError names the file a build step failed on.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// ErrEncryptedNotDecrypted is returned for a Secret that still holds SOPS
// metadata after the build when decryption was not configured.
var ErrEncryptedNotDecrypted = errors.New("is SOPS encrypted, configuring decryption is required")

// ErrStillEncrypted is returned, with decryption configured, for an object
// that still holds SOPS metadata after the build without being annotated
// kustomize.toolkit.fluxcd.io/decrypt: disabled.
var ErrStillEncrypted = errors.New("is still SOPS encrypted after the build (lacre decrypts files of the artifact, checking their MAC, not built objects: it came from a file that was not decrypted, such as one with the decrypt: disabled annotation on another document, or from a remote base); annotate it kustomize.toolkit.fluxcd.io/decrypt: disabled to apply it as it is")

// finish checks and completes a built object: SOPS metadata left after
// the build, a Secret's encrypted data entries, the built-Secret check,
// commonMetadata.
func finish(ctx context.Context, u *unstructured.Unstructured, opts Options, prov proven, res *Result) error {
	if _, ok := u.Object["sops"]; ok && !opts.KeepEncrypted && !isDecryptDisabled(u) {
		// As in Flux: without decryption, only a Secret is refused (a
		// SopsSecret custom resource, for one, is applied as it is).
		isSecret := u.GetKind() == "Secret" && u.GetAPIVersion() == "v1"
		if opts.Decrypt {
			return fmt.Errorf("%s/%s/%s %w", u.GetKind(), u.GetNamespace(), u.GetName(), ErrStillEncrypted)
		}
		if isSecret {
			return fmt.Errorf("%s/%s/%s %w", u.GetKind(), u.GetNamespace(), u.GetName(), ErrEncryptedNotDecrypted)
		}
	}
	if opts.Decrypt && u.GetKind() == "Secret" && u.GetAPIVersion() == "v1" && !isDecryptDisabled(u) {
		n, err := decryptSecretData(ctx, u, opts, prov)
		if err != nil {
			return err
		}
		res.Decrypted += n
	}
	if opts.RequireEncryptedSecrets {
		if err := prov.checkSecret(u); err != nil {
			return err
		}
	}
	applyCommonMetadata(u, opts.Spec.CommonMetadata)
	return nil
}

// Result is a build's output.
type Result struct {
	Objects []*unstructured.Unstructured
	// Decrypted counts files and values decrypted.
	Decrypted int
}

// Build builds the objects of an artifact.
//
// Files are copied into the build's in-memory file system, checked and,
// when encrypted, decrypted the first time the build reads them, not up
// front: a Kustomization pays only for the files its path uses, not for
// every file of a repository shared by many Kustomizations.
func Build(ctx context.Context, files artifact.Files, opts Options) (*Result, error) {
	res := &Result{}
	if opts.RequireEncryptedSecrets {
		// Every file, read or not: a plain Secret anywhere is refused. The
		// built Secrets are checked below.
		for _, n := range slices.Sorted(maps.Keys(files)) {
			if kubesecret.Plain(n, files[n]) {
				return nil, &FileError{n, ErrPlaintextSecret}
			}
		}
	}
	dfs := &lazyFS{FileSystem: filesys.MakeFsInMemory(), files: files, ctx: ctx, opts: opts, res: res, done: map[string]bool{}, prov: proven{}}
	var fs filesys.FileSystem = dfs
	if opts.AllowRemote {
		fs = newRouteFS(dfs)
	}
	dir, err := cleanPath(opts.Path)
	if err != nil {
		return nil, err
	}
	dir = path.Join(root, dir)
	if !fs.IsDir(dir) {
		why := "no such file or directory"
		if fs.Exists(dir) {
			why = "not a directory"
		}
		return nil, fmt.Errorf("%w: stat %s: %s", ErrPathNotFound, opts.Path, why)
	}
	// Before anything else reads a file: remote forms, and the roles of
	// generator inputs (which decide how they are decrypted).
	dfs.roles = generatorInputs{}
	visit := func(kf, d string, k map[string]any) error {
		dfs.roles.add(d, k)
		if opts.AllowRemote {
			return nil
		}
		return checkRemote(kf, d, k)
	}
	if err := walkKustomizations(fs, dir, map[string]bool{}, visit); err != nil {
		return nil, dfs.firstErr(err)
	}
	if err := prepareKustomization(fs, dir, opts.Spec); err != nil {
		return nil, dfs.firstErr(err)
	}
	ko := krusty.MakeDefaultOptions()
	ko.LoadRestrictions = kustypes.LoadRestrictionsNone // the file system holds only the artifact
	rm, err := krusty.MakeKustomizer(ko).Run(fs, dir)
	if err != nil {
		if dfs.err != nil {
			return nil, dfs.err
		}
		if strings.Contains(err.Error(), "invalid utf8") {
			if fe := dfs.invalidUTF8(); fe != nil {
				return nil, fe
			}
		}
		return nil, errors.New("kustomize build failed: " + redact.Error(err))
	}
	for _, r := range rm.Resources() {
		// Through JSON, so numbers are int64 as Kubernetes clients expect.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, errors.New("built object is invalid: " + redact.Error(err))
		}
		if err := finish(ctx, u, opts, dfs.prov, res); err != nil {
			return nil, err
		}
		res.Objects = append(res.Objects, u)
	}
	return res, nil
}
