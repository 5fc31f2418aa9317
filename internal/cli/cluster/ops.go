package cluster

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/cli/cliapp"
)

// target resolves "source git" or "kustomization" to an object.
type target struct {
	kind string // GitRepository, OCIRepository or Kustomization
}

func (t target) newObject() client.Object {
	switch t.kind {
	case sourcev1.GitRepositoryKind:
		return &sourcev1.GitRepository{}
	case sourcev1.OCIRepositoryKind:
		return &sourcev1.OCIRepository{}
	case sourcev1.BucketKind:
		return &sourcev1.Bucket{}
	}
	return &kustomizev1.Kustomization{}
}

// newList returns an empty list of t's kind.
func (t target) newList() client.ObjectList {
	switch t.kind {
	case sourcev1.GitRepositoryKind:
		return &sourcev1.GitRepositoryList{}
	case sourcev1.OCIRepositoryKind:
		return &sourcev1.OCIRepositoryList{}
	case sourcev1.BucketKind:
		return &sourcev1.BucketList{}
	}
	return &kustomizev1.KustomizationList{}
}

// sourceTargets are the source kinds of `get sources all`, in its order.
var sourceTargets = []target{{sourcev1.GitRepositoryKind}, {sourcev1.OCIRepositoryKind}, {sourcev1.BucketKind}}

// getNamed returns a client and the object of kind t called name in cf's
// namespace.
func getNamed(ctx context.Context, cf *clusterFlags, t target, name string) (client.Client, client.Object, error) {
	c, err := cf.client()
	if err != nil {
		return nil, nil, err
	}
	o := t.newObject()
	if err := c.Get(ctx, client.ObjectKey{Namespace: cf.namespace, Name: name}, o); err != nil {
		return nil, nil, err
	}
	return c, o, nil
}

func status(o client.Object) (conds []metav1.Condition, revision string, suspended bool, handled string) {
	switch o := o.(type) {
	case *sourcev1.GitRepository:
		if o.Status.Artifact != nil {
			revision = o.Status.Artifact.Revision
		}
		return o.Status.Conditions, revision, o.Spec.Suspend, o.Status.LastHandledReconcileAt
	case *sourcev1.OCIRepository:
		if o.Status.Artifact != nil {
			revision = o.Status.Artifact.Revision
		}
		return o.Status.Conditions, revision, o.Spec.Suspend, o.Status.LastHandledReconcileAt
	case *sourcev1.Bucket:
		if o.Status.Artifact != nil {
			revision = o.Status.Artifact.Revision
		}
		return o.Status.Conditions, revision, o.Spec.Suspend, o.Status.LastHandledReconcileAt
	case *kustomizev1.Kustomization:
		return o.Status.Conditions, o.Status.LastAppliedRevision, o.Spec.Suspend, o.Status.LastHandledReconcileAt
	}
	return nil, "", false, ""
}

func (a *app) getCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "get", Short: "List sources and Kustomizations with their status"}
	mk := func(use, short string, t target) *cobra.Command {
		var cf clusterFlags
		var all, watchFlag bool
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cf.watchClient()
			if err != nil {
				return err
			}
			opts := []client.ListOption{}
			if !all {
				opts = append(opts, client.InNamespace(cf.namespace))
			}
			newList := t.newList
			list := newList()
			if err := cl.List(cmd.Context(), list, opts...); err != nil {
				return err
			}
			var items []client.Object
			_ = apimeta.EachListItem(list, func(o runtime.Object) error {
				items = append(items, o.(client.Object))
				return nil
			})
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			if all {
				fmt.Fprint(w, "NAMESPACE\t")
			}
			fmt.Fprintln(w, "NAME\tREVISION\tSUSPENDED\tREADY\tMESSAGE")
			row := func(o client.Object) {
				conds, rev, susp, _ := status(o)
				ready, msg := "Unknown", ""
				if c := apimeta.FindStatusCondition(conds, meta.ReadyCondition); c != nil {
					ready, msg = string(c.Status), c.Message
				}
				if all {
					fmt.Fprintf(w, "%s\t", o.GetNamespace())
				}
				fmt.Fprintf(w, "%s\t%s\t%t\t%s\t%s\n", o.GetName(), rev, susp, ready, msg)
			}
			for _, o := range items {
				row(o)
			}
			if err := w.Flush(); err != nil || !watchFlag {
				return err
			}
			// -w: print a row whenever an object changes, as kubectl -w
			// does, until interrupted.
			wopts := append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}})
			wi, err := cl.Watch(cmd.Context(), newList(), wopts...)
			if err != nil {
				return err
			}
			defer wi.Stop()
			for ev := range wi.ResultChan() {
				o, ok := ev.Object.(client.Object)
				if !ok || ev.Type == watch.Bookmark || ev.Type == watch.Error {
					continue
				}
				row(o)
				if err := w.Flush(); err != nil {
					return err
				}
			}
			return nil
		}}
		cf.register(c)
		c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list in every namespace")
		c.Flags().BoolVarP(&watchFlag, "watch", "w", false, "after listing, print a row for every change until interrupted")
		_ = c.Flags().MarkHidden("export")
		_ = c.Flags().MarkHidden("timeout")
		return c
	}
	src := &cobra.Command{Use: "sources", Short: "List sources"}
	src.AddCommand(mk("git", "List GitRepositories", target{sourcev1.GitRepositoryKind}),
		mk("oci", "List OCIRepositories", target{sourcev1.OCIRepositoryKind}),
		mk("bucket", "List Buckets", target{sourcev1.BucketKind}), a.getSourcesAllCommand())
	cmd.AddCommand(src, mk("kustomizations", "List Kustomizations", target{kustomizev1.KustomizationKind}))
	return cmd
}

// forKinds adds "source git NAME" and "kustomization NAME" subcommands.
func forKinds(parent *cobra.Command, short string, run func(cmd *cobra.Command, cf *clusterFlags, t target, name string) error, extra func(*cobra.Command)) {
	mk := func(use string, t target) *cobra.Command {
		var cf clusterFlags
		c := &cobra.Command{Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, &cf, t, args[0])
		}}
		cf.register(c)
		if extra != nil {
			extra(c)
		}
		return c
	}
	src := &cobra.Command{Use: "source", Short: short}
	src.AddCommand(mk("git", target{sourcev1.GitRepositoryKind}), mk("oci", target{sourcev1.OCIRepositoryKind}), mk("bucket", target{sourcev1.BucketKind}))
	parent.AddCommand(src, mk("kustomization", target{kustomizev1.KustomizationKind}))
}

func (a *app) reconcileCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "reconcile", Short: "Ask for an immediate reconcile and wait for it"}
	var withSource bool
	forKinds(cmd, "Reconcile now and wait for Ready", func(cmd *cobra.Command, cf *clusterFlags, t target, name string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if withSource && t.kind == kustomizev1.KustomizationKind {
			ks := &kustomizev1.Kustomization{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: cf.namespace, Name: name}, ks); err != nil {
				return err
			}
			ns := ks.Spec.SourceRef.Namespace
			if ns == "" {
				ns = cf.namespace
			}
			st := target{ks.Spec.SourceRef.Kind}
			if st.kind != sourcev1.GitRepositoryKind && st.kind != sourcev1.OCIRepositoryKind && st.kind != sourcev1.BucketKind {
				return cliapp.Codef(cliapp.CodeGeneric, "--with-source: source kind %q cannot be reconciled by lacre", st.kind)
			}
			if err := a.requestAndWait(ctx, c, st, ns, ks.Spec.SourceRef.Name, cf.timeout); err != nil {
				return err
			}
		}
		return a.requestAndWait(ctx, c, t, cf.namespace, name, cf.timeout)
	}, func(c *cobra.Command) {
		if c.Use == "kustomization NAME" {
			c.Flags().BoolVar(&withSource, "with-source", false, "reconcile the source first")
		}
	})
	return cmd
}

func (a *app) requestAndWait(ctx context.Context, c client.Client, t target, ns, name string, timeout time.Duration) error {
	o := t.newObject()
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
		return fmt.Errorf("%s %s/%s: %v", t.kind, ns, name, err)
	}
	if _, _, susp, _ := status(o); susp {
		return fmt.Errorf("%s %s/%s is suspended: resume it first", t.kind, ns, name)
	}
	stamp := time.Now().Format(time.RFC3339Nano)
	patch := client.MergeFrom(o.DeepCopyObject().(client.Object))
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[meta.ReconcileRequestAnnotation] = stamp
	o.SetAnnotations(ann)
	if err := c.Patch(ctx, o, patch); err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "lacre: reconciling %s %s/%s\n", t.kind, ns, name)
	deadline := time.Now().Add(timeout)
	for {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o); err == nil {
			conds, rev, _, handled := status(o)
			if handled == stamp {
				if cnd := apimeta.FindStatusCondition(conds, meta.ReadyCondition); cnd != nil {
					if cnd.Status == metav1.ConditionTrue {
						fmt.Fprintf(a.Stdout, "%s %s/%s: %s\n", t.kind, ns, name, rev)
						return nil
					}
					return fmt.Errorf("%s %s/%s is not ready: %s", t.kind, ns, name, cnd.Message)
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s/%s: no reconcile within %s", t.kind, ns, name, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (a *app) suspendCommands() []*cobra.Command {
	mk := func(use string, suspend bool) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: map[bool]string{true: "Suspend reconciliation", false: "Resume reconciliation"}[suspend]}
		forKinds(cmd, cmd.Short, func(cmd *cobra.Command, cf *clusterFlags, t target, name string) error {
			c, o, err := getNamed(cmd.Context(), cf, t, name)
			if err != nil {
				return err
			}
			patch := client.MergeFrom(o.DeepCopyObject().(client.Object))
			switch o := o.(type) {
			case *sourcev1.GitRepository:
				o.Spec.Suspend = suspend
			case *sourcev1.OCIRepository:
				o.Spec.Suspend = suspend
			case *sourcev1.Bucket:
				o.Spec.Suspend = suspend
			case *kustomizev1.Kustomization:
				o.Spec.Suspend = suspend
			}
			if err := c.Patch(cmd.Context(), o, patch); err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre: %s %s/%s %s\n", t.kind, cf.namespace, name, map[bool]string{true: "suspended", false: "resumed"}[suspend])
			if !suspend {
				return a.requestAndWait(cmd.Context(), c, t, cf.namespace, name, cf.timeout)
			}
			return nil
		}, nil)
		return cmd
	}
	return []*cobra.Command{mk("suspend", true), mk("resume", false)}
}

func (a *app) exportCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "export", Short: "Print objects as YAML without status"}
	forKinds(cmd, "Print one object as YAML", func(cmd *cobra.Command, cf *clusterFlags, t target, name string) error {
		_, o, err := getNamed(cmd.Context(), cf, t, name)
		if err != nil {
			return err
		}
		o.SetResourceVersion("")
		o.SetUID("")
		o.SetGeneration(0)
		o.SetManagedFields(nil)
		o.SetFinalizers(nil)
		anns := o.GetAnnotations()
		delete(anns, meta.ReconcileRequestAnnotation)
		o.SetAnnotations(anns)
		return a.printYAML(o)
	}, nil)
	return cmd
}
