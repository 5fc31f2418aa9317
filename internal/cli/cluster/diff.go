package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/internal/ssa"
)

// diffFieldManager is the field manager of the dry-run applies.
const diffFieldManager = "lacre"

// codeDiffError is diff's exit code for errors (0: no diff, 1: diff).
const codeDiffError = 2

func (a *app) diffCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "diff", Short: "Show what a local directory would change in the cluster, or how it differs from an OCI artifact"}
	var bf buildFlags
	k := &cobra.Command{
		Use:   "kustomization NAME --path DIR [--decrypt] [--show-secrets]",
		Short: "Diff a local build against the cluster (exit 0: no diff, 1: diff, >1: error)",
		Long: `Build DIR as lacre build kustomization does, server-side dry-run apply each object
(field manager "lacre") and print a unified diff per object that would change,
be created, or be pruned (objects of the Kustomization's inventory that the build
no longer holds, when spec.prune is true).

Secret data and stringData values are masked unless --show-secrets: a masked value
reads "*** (before)" / "*** (after)" when it changes and "***" when it does not.
Without --decrypt, SOPS-encrypted Secrets are compared by their keys only.

Exit codes, as kubectl diff and flux diff: 0 no differences, 1 differences, >1 error.`,
		Example: `  SOPS_AGE_KEY_FILE=key.txt lacre diff kustomization my-secrets --path ./clusters/cluster0 --decrypt`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cliapp.Codef(codeDiffError, "accepts 1 arg (the Kustomization's name), received %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := a.runDiff(cmd.Context(), &bf, args[0])
			if err != nil {
				var ee *cliapp.ExitError
				if errors.As(err, &ee) && ee.Code > 1 {
					return err
				}
				return &cliapp.ExitError{Code: codeDiffError, Err: err}
			}
			if n > 0 {
				return cliapp.SilentExit(1)
			}
			return nil
		},
	}
	k.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return cliapp.Codef(codeDiffError, "%v (see %q)", err, c.CommandPath()+" --help")
	})
	bf.register(k)
	cmd.AddCommand(k)
	return cmd
}

// runDiff prints the diffs and returns how many objects differ. What it
// applies and prunes follows the controller's rules (internal/inventory).
func (a *app) runDiff(ctx context.Context, bf *buildFlags, name string) (int, error) {
	if bf.path == "" {
		return 0, errors.New("--path is required")
	}
	ks, c, err := a.loadKustomization(ctx, bf, name, true)
	if err != nil {
		return 0, err
	}
	objs, err := a.localBuild(ctx, bf, ks, c)
	if err != nil {
		return 0, err
	}
	ignore, err := ssa.CompileIgnore(ks.Spec.Ignore)
	if err != nil {
		return 0, err
	}
	inventory.SortForApply(objs, nil)
	owner := inventory.OwnerOf(ks)
	changed := 0
	var keep []kustomizev1.ResourceRef
	for _, u := range objs {
		keep = append(keep, inventory.Entry(u))
		if inventory.Ignored(u) {
			continue
		}
		owner.Label(u)
		d, err := a.diffObject(ctx, c, u, ignore, bf.showSecrets)
		changed += d
		if err != nil {
			return changed, err
		}
	}
	if ks.Spec.Prune && ks.Status.Inventory != nil {
		gone := func(err error) bool { return apierrors.IsNotFound(err) || isNoMatch(err) }
		_, err := inventory.Stale(ctx, c, owner, ks.Status.Inventory.Entries, keep, gone, func(_ string, live *unstructured.Unstructured) error {
			d, err := a.printDiff(objectRef(live), inventory.Normalize(live), nil, isSecret(live) && !bf.showSecrets)
			changed += d
			return err
		})
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// diffObject prints the diff of one built object against the cluster, as
// a server-side dry-run apply would change it, without the paths of
// spec.ignore's rules (as flux diff); it returns 1 when they differ.
func (a *app) diffObject(ctx context.Context, c client.Client, u *unstructured.Unstructured, ignore ssa.Ignorer, showSecrets bool) (int, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(u.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKeyFromObject(u), live)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) && !isNoMatch(err) {
		return 0, fmt.Errorf("%s: %s", objectRef(u), redact.Error(err))
	}
	if !exists {
		live = nil
	}
	if !inventory.ShouldApply(u, live) {
		return 0, nil
	}
	if _, enc := u.Object["sops"]; enc {
		return a.diffEncrypted(u, live, showSecrets)
	}
	merged := u.DeepCopy()
	if err := c.Patch(ctx, merged, client.Apply, client.FieldOwner(diffFieldManager), client.ForceOwnership, client.DryRunAll); err != nil {
		if exists || !(apierrors.IsNotFound(err) || isNoMatch(err)) {
			return 0, fmt.Errorf("%s: dry-run apply failed: %s", objectRef(u), redact.Error(err))
		}
		// Its namespace or CRD is created by this apply: show the
		// object as built.
		merged = u.DeepCopy()
	}
	if exists {
		live, merged = ignore.Strip(live, merged)
	}
	return a.printDiff(objectRef(u), inventory.Normalize(live), inventory.Normalize(merged), isSecret(u) && !showSecrets)
}

// diffEncrypted compares a still-encrypted Secret with the live one by its
// keys only (its values cannot be read without --decrypt).
func (a *app) diffEncrypted(u, live *unstructured.Unstructured, showSecrets bool) (int, error) {
	if !isSecret(u) {
		a.Warnf("%s is SOPS-encrypted and not compared (use --decrypt)", objectRef(u))
		return 0, nil
	}
	keysOf := func(o *unstructured.Unstructured) []string {
		var ks []string
		if o == nil {
			return nil
		}
		for _, f := range []string{"data", "stringData"} {
			m, _ := o.Object[f].(map[string]any)
			for k := range m {
				if !slices.Contains(ks, k) {
					ks = append(ks, k)
				}
			}
		}
		sort.Strings(ks)
		return ks
	}
	stub := func(o *unstructured.Unstructured) *unstructured.Unstructured {
		if o == nil {
			return nil
		}
		s := &unstructured.Unstructured{Object: map[string]any{}}
		s.SetAPIVersion("v1")
		s.SetKind("Secret")
		s.SetNamespace(o.GetNamespace())
		s.SetName(o.GetName())
		data := map[string]any{}
		for _, k := range keysOf(o) {
			data[k] = "***"
		}
		s.Object["data"] = data
		return s
	}
	a.Infof("%s is SOPS-encrypted: compared by keys only (use --decrypt to compare values)", objectRef(u))
	if live != nil && slices.Equal(keysOf(u), keysOf(live)) {
		return 0, nil
	}
	return a.printDiff(objectRef(u)+" (encrypted: keys only)", stub(live), stub(u), false)
}

// printDiff prints a unified diff of two objects (nil: absent) and
// returns 1 when they differ.
func (a *app) printDiff(ref string, live, merged *unstructured.Unstructured, mask bool) (int, error) {
	if mask {
		maskPair(live, merged)
	}
	before, err := toYAML(live)
	if err != nil {
		return 0, err
	}
	after, err := toYAML(merged)
	if err != nil {
		return 0, err
	}
	if before == after {
		return 0, nil
	}
	from, to := "live/"+ref, "merged/"+ref
	if live == nil {
		from = "/dev/null"
		ref += " (created)"
	}
	if merged == nil {
		to = "/dev/null"
		ref += " (pruned)"
	}
	lines := func(s string) []string {
		if s == "" {
			return nil
		}
		return difflib.SplitLines(strings.TrimSuffix(s, "\n"))
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(before), B: lines(after),
		FromFile: from, ToFile: to, Context: 3,
	})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(a.Stdout, "► %s\n%s", ref, text)
	return 1, nil
}

func isNoMatch(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no matches for kind") || strings.Contains(err.Error(), "no kind is registered"))
}
