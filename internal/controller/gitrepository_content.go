package controller

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing/fstest"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
)

// sparseFilter keeps the files of a checkout under the directories of
// spec.sparseCheckout (a leading "./" is ignored, as Flux does). A listed
// directory without files is an error, as in Flux.
func sparseFilter(files fstest.MapFS, dirs []string) (fstest.MapFS, error) {
	prefixes := sparsePrefixes(dirs)
	if prefixes == nil {
		return files, nil
	}
	out := fstest.MapFS{}
	found := make([]bool, len(prefixes))
	for name, f := range files {
		for i, p := range prefixes {
			if strings.HasPrefix(name, p) {
				out[name], found[i] = f, true
			}
		}
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("sparse checkout dir %q does not exist in repository", dirs[i])
		}
	}
	return out, nil
}

// sparsePrefixes are the directories of spec.sparseCheckout, each with a
// trailing "/"; nil for the whole tree (no directory, or the root).
func sparsePrefixes(dirs []string) []string {
	prefixes := make([]string, 0, len(dirs))
	for _, d := range dirs {
		c := strings.Trim(path.Clean("/"+strings.TrimPrefix(d, "./")), "/")
		if c == "" {
			return nil // the root: everything
		}
		prefixes = append(prefixes, c+"/")
	}
	if len(prefixes) == 0 {
		return nil
	}
	return prefixes
}

// sparseWants says which submodules a sparse checkout needs: those inside
// its directories or holding one (nil: all). Flux fetches no submodule at
// all with a sparse checkout (go-git skips them then); lacre fetches these.
func sparseWants(dirs []string) func(string) bool {
	prefixes := sparsePrefixes(dirs)
	if prefixes == nil {
		return nil
	}
	return func(p string) bool {
		return slices.ContainsFunc(prefixes, func(d string) bool {
			return strings.HasPrefix(p+"/", d) || strings.HasPrefix(d, p+"/")
		})
	}
}

// includeUnavailable is returned by fetchIncludes when an included
// GitRepository is missing or has no artifact yet.
type includeUnavailable struct{ reason, msg string }

func (e *includeUnavailable) Error() string { return e.msg }

// fetchIncludes returns the artifacts of spec.include, in its order. As in
// Flux, an included GitRepository must exist and have an artifact (it need
// not be Ready); otherwise IncludeUnavailable=True and a retry.
func (r *GitRepositoryReconciler) fetchIncludes(ctx context.Context, obj *sourcev1.GitRepository) ([]*meta.Artifact, error) {
	arts := make([]*meta.Artifact, 0, len(obj.Spec.Include))
	for _, incl := range obj.Spec.Include {
		name := incl.GitRepositoryRef.Name
		dep := &sourcev1.GitRepository{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: name}, dep); err != nil {
			return nil, &includeUnavailable{"NotFound", fmt.Sprintf("could not get resource for include %q: %v", name, err)}
		}
		if dep.Status.Artifact == nil {
			return nil, &includeUnavailable{"NoArtifact", fmt.Sprintf("no artifact available for include %q", name)}
		}
		arts = append(arts, dep.Status.Artifact.DeepCopy())
	}
	apimeta.RemoveStatusCondition(&obj.Status.Conditions, sourcev1.IncludeUnavailableCondition)
	return arts, nil
}

// markIncludeUnavailable records an unavailable include (not stalled).
func markIncludeUnavailable(obj *sourcev1.GitRepository, e *includeUnavailable) {
	conds, gen := &obj.Status.Conditions, obj.Generation
	setCondition(conds, gen, sourcev1.IncludeUnavailableCondition, metav1.ConditionTrue, e.reason, e.msg)
	markFailed(conds, gen, e.reason, e.msg, false)
}

// applyIncludes copies the files of each included artifact under fromPath
// into toPath of files (overwriting). Paths are confined to the artifact,
// as Flux's secure join does. The included bytes count against the
// controller's limits: each artifact is read and extracted bounded, and
// the combined tree is bounded again when it is packaged.
func (r *GitRepositoryReconciler) applyIncludes(obj *sourcev1.GitRepository, files fstest.MapFS, arts []*meta.Artifact) error {
	lim := r.Limits.WithDefaults()
	for i, incl := range obj.Spec.Include {
		data, err := r.Storage.Read(arts[i].Path, lim.MaxTotalSize)
		if err != nil {
			return fmt.Errorf("failed to read include %q: %w", incl.GitRepositoryRef.Name, err)
		}
		if err := artifact.Verify(data, arts[i].Digest); err != nil {
			return fmt.Errorf("include %q: %w", incl.GitRepositoryRef.Name, err)
		}
		got, err := artifact.Extract(data, lim)
		if err != nil {
			return fmt.Errorf("failed to copy include %q: %w", incl.GitRepositoryRef.Name, err)
		}
		from := strings.Trim(path.Clean("/"+incl.GetFromPath()), "/")
		to := strings.Trim(path.Clean("/"+incl.GetToPath()), "/")
		copied := 0
		for name, b := range got {
			rel := name
			if from != "" {
				var ok bool
				if rel, ok = strings.CutPrefix(name, from+"/"); !ok {
					continue
				}
			}
			files[path.Join(to, rel)] = &fstest.MapFile{Data: b, Mode: 0o644}
			copied++
		}
		if copied == 0 && from != "" {
			return fmt.Errorf("failed to copy include %q: fromPath %q has no files", incl.GitRepositoryRef.Name, incl.FromPath)
		}
		if len(files) > lim.MaxFiles {
			return fmt.Errorf("%w: the artifact with its includes has more than %d files", artifact.ErrTooLarge, lim.MaxFiles)
		}
	}
	return nil
}

// contentConfigUnchanged reports whether what shapes the artifact besides
// the commit (ignore, sparse checkout, submodules, includes and their
// artifacts) is what the stored artifact was built from.
func contentConfigUnchanged(obj *sourcev1.GitRepository, arts []*meta.Artifact) bool {
	st := &obj.Status
	if !equalPtr(st.ObservedIgnore, obj.Spec.Ignore) || !slices.Equal(st.ObservedSparseCheckout, obj.Spec.SparseCheckout) ||
		st.ObservedRecurseSubmodules != obj.Spec.RecurseSubmodules || !slices.Equal(st.ObservedInclude, obj.Spec.Include) {
		return false
	}
	return includesEqual(st.IncludedArtifacts, arts)
}

func includesEqual(a, b []*meta.Artifact) bool {
	return slices.EqualFunc(a, b, func(x, y *meta.Artifact) bool {
		return x != nil && y != nil && x.Revision == y.Revision && x.Digest == y.Digest
	})
}

// includersOf maps a GitRepository to those of its namespace that include
// it, so a new artifact of an included repository rebuilds theirs.
func (r *GitRepositoryReconciler) includersOf(ctx context.Context, o client.Object) []reconcile.Request {
	var list sourcev1.GitRepositoryList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, gr := range list.Items {
		if r.Selector != nil && !r.Selector.Matches(labels.Set(gr.Labels)) {
			continue
		}
		if slices.ContainsFunc(gr.Spec.Include, func(i sourcev1.GitRepositoryInclude) bool { return i.GitRepositoryRef.Name == o.GetName() }) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: gr.Namespace, Name: gr.Name}})
		}
	}
	return reqs
}

// observeContent records what the stored artifact was built from.
func (r *GitRepositoryReconciler) observeContent(obj *sourcev1.GitRepository, incl []*meta.Artifact) {
	st := &obj.Status
	st.IncludedArtifacts = nil
	if len(incl) > 0 {
		st.IncludedArtifacts = incl
	}
	st.ObservedInclude = slices.Clone(obj.Spec.Include)
	st.ObservedSparseCheckout = slices.Clone(obj.Spec.SparseCheckout)
	st.ObservedRecurseSubmodules = obj.Spec.RecurseSubmodules
}
