package cluster

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/inventory"
)

func (a *app) treeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "tree", Short: "Print the objects a Kustomization applied, as a tree"}
	var cf clusterFlags
	ks := &cobra.Command{
		Use:   "kustomization NAME",
		Short: "Print a Kustomization's inventory as a tree, following nested Kustomizations",
		Example: `  lacre tree kustomization my-secrets
  lacre tree kustomization apps -n tenant-a`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames(&cf, target{kustomizev1.KustomizationKind}),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			root := &kustomizev1.Kustomization{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: cf.namespace, Name: args[0]}, root); err != nil {
				return notFound(err, kustomizev1.KustomizationKind, cf.namespace, args[0])
			}
			fmt.Fprintf(a.Stdout, "Kustomization/%s/%s\n", root.Namespace, root.Name)
			seen := map[string]bool{root.Namespace + "/" + root.Name: true}
			var walk func(ks *kustomizev1.Kustomization, prefix string) error
			walk = func(ks *kustomizev1.Kustomization, prefix string) error {
				if ks.Status.Inventory == nil {
					return nil
				}
				var refs []inventory.Object
				for _, e := range ks.Status.Inventory.Entries {
					r, err := inventory.Parse(e.ID)
					if err != nil {
						return err
					}
					refs = append(refs, r)
				}
				for i, r := range refs {
					branch, next := "├── ", "│   "
					if i == len(refs)-1 {
						branch, next = "└── ", "    "
					}
					fmt.Fprintf(a.Stdout, "%s%s%s\n", prefix, branch, r)
					if r.Kind != kustomizev1.KustomizationKind || r.Group != kustomizev1.GroupVersion.Group || seen[r.Namespace+"/"+r.Name] {
						continue
					}
					seen[r.Namespace+"/"+r.Name] = true
					child := &kustomizev1.Kustomization{}
					if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, child); err != nil {
						if apierrors.IsNotFound(err) {
							continue
						}
						return err
					}
					if err := walk(child, prefix+next); err != nil {
						return err
					}
				}
				return nil
			}
			return walk(root, "")
		},
	}
	cf.register(ks)
	_ = ks.Flags().MarkHidden("export")
	_ = ks.Flags().MarkHidden("timeout")
	cmd.AddCommand(ks)
	return cmd
}

// notFound turns a NotFound from the API into one clear sentence.
func notFound(err error, kind, ns, name string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s/%s not found", kind, ns, name)
	}
	return err
}

// lacreKinds are the involvedObject kinds `lacre events` shows.
var lacreKinds = map[string]string{
	sourcev1.GitRepositoryKind:    sourcev1.GroupVersion.Group,
	sourcev1.OCIRepositoryKind:    sourcev1.GroupVersion.Group,
	sourcev1.BucketKind:           sourcev1.GroupVersion.Group,
	kustomizev1.KustomizationKind: kustomizev1.GroupVersion.Group,
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func (a *app) eventsCommand() *cobra.Command {
	var cf clusterFlags
	var all bool
	var forObj string
	cmd := &cobra.Command{
		Use:   "events [--for Kind/NAME] [-A]",
		Short: "List the Kubernetes events of GitRepositories, OCIRepositories, Buckets and Kustomizations, oldest first",
		Example: `  lacre events
  lacre events --for Kustomization/my-secrets
  lacre events -A`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var wantKind, wantName string
			if forObj != "" {
				k, n, ok := strings.Cut(forObj, "/")
				if !ok || n == "" {
					return cliapp.Codef(cliapp.CodeGeneric, "--for %q: want Kind/NAME, e.g. Kustomization/my-secrets", forObj)
				}
				for kind := range lacreKinds {
					if strings.EqualFold(kind, k) {
						wantKind = kind
					}
				}
				if wantKind == "" {
					return cliapp.Codef(cliapp.CodeGeneric, "--for %q: unknown kind %q: use GitRepository, Bucket or Kustomization", forObj, k)
				}
				wantName = n
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			var l corev1.EventList
			opts := []client.ListOption{}
			if !all {
				opts = append(opts, client.InNamespace(cf.namespace))
			}
			if err := c.List(cmd.Context(), &l, opts...); err != nil {
				return err
			}
			var evs []*corev1.Event
			for i := range l.Items {
				e := &l.Items[i]
				inv := e.InvolvedObject
				group, ok := lacreKinds[inv.Kind]
				if !ok || (inv.APIVersion != "" && !strings.HasPrefix(inv.APIVersion, group+"/")) {
					continue
				}
				if wantKind != "" && (inv.Kind != wantKind || inv.Name != wantName) {
					continue
				}
				evs = append(evs, e)
			}
			sort.SliceStable(evs, func(i, j int) bool {
				ti, tj := eventTime(evs[i]), eventTime(evs[j])
				if !ti.Equal(tj) {
					return ti.Before(tj)
				}
				return evs[i].Name < evs[j].Name
			})
			return printEvents(a.Stdout, evs, all, time.Now())
		},
	}
	cf.register(cmd)
	_ = cmd.Flags().MarkHidden("export")
	_ = cmd.Flags().MarkHidden("timeout")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "events of every namespace")
	cmd.Flags().StringVar(&forObj, "for", "", "only the events of this object: GitRepository/NAME or Kustomization/NAME")
	_ = cmd.RegisterFlagCompletionFunc("for", func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, t := range []target{{sourcev1.GitRepositoryKind}, {sourcev1.BucketKind}, {kustomizev1.KustomizationKind}} {
			names, _ := completeNames(&cf, t)(cmd, nil, "")
			for _, n := range names {
				out = append(out, t.kind+"/"+n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func printEvents(w io.Writer, evs []*corev1.Event, withNS bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if withNS {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprintln(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
	for _, e := range evs {
		if withNS {
			fmt.Fprintf(tw, "%s\t", e.Namespace)
		}
		seen := "<unknown>"
		if t := eventTime(e); !t.IsZero() {
			seen = duration.HumanDuration(now.Sub(t))
		}
		msg := strings.ReplaceAll(strings.TrimSpace(e.Message), "\n", " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s\t%s\n", seen, e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, msg)
	}
	return tw.Flush()
}

func (a *app) deleteCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "delete", Short: "Delete sources and Kustomizations"}
	var silent bool
	forKinds(cmd, "Delete an object (its finalizer lets the controller clean up)", func(cmd *cobra.Command, cf *clusterFlags, t target, name string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		o := t.newObject()
		if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: cf.namespace, Name: name}, o); err != nil {
			return notFound(err, t.kind, cf.namespace, name)
		}
		if !silent && !a.confirm(fmt.Sprintf("Delete %s %s/%s?", t.kind, cf.namespace, name)) {
			return errNotConfirmed
		}
		if err := c.Delete(cmd.Context(), o); err != nil {
			return notFound(err, t.kind, cf.namespace, name)
		}
		fmt.Fprintf(a.Stderr, "lacre: %s %s/%s deleted\n", t.kind, cf.namespace, name)
		return nil
	}, func(c *cobra.Command) {
		c.Flags().BoolVarP(&silent, "silent", "s", false, "do not ask for confirmation")
		_ = c.Flags().MarkHidden("export")
		_ = c.Flags().MarkHidden("timeout")
	})
	return cmd
}

// completeNames completes object names of one kind from the cluster; any
// error (no cluster) just completes nothing.
func completeNames(cf *clusterFlags, t target) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := cf.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		if l := t.newList(); c.List(cmd.Context(), l, client.InNamespace(cf.namespace)) == nil {
			_ = apimeta.EachListItem(l, func(o runtime.Object) error {
				names = append(names, o.(client.Object).GetName())
				return nil
			})
		}
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// operatorExamples are the --help examples of the operator commands built by
// forKinds and getCommand, by command path.
var operatorExamples = map[string]string{
	"lacre get sources git":      "  lacre get sources git\n  lacre get sources git -A",
	"lacre get sources oci":      "  lacre get sources oci\n  lacre get sources oci -A",
	"lacre get sources all":      "  lacre get sources all -A",
	"lacre reconcile source oci": "  lacre reconcile source oci my-secrets",
	"lacre suspend source oci":   "  lacre suspend source oci my-secrets",
	"lacre resume source oci":    "  lacre resume source oci my-secrets",
	"lacre export source oci":    "  lacre export source oci my-secrets > my-secrets.yaml",
	"lacre delete source oci":    "  lacre delete source oci my-secrets --silent",
	"lacre get kustomizations":   "  lacre get kustomizations\n  lacre get kustomizations -n tenant-a",
	// Bucket sources.
	"lacre get sources bucket":      "  lacre get sources bucket -A",
	"lacre reconcile source bucket": "  lacre reconcile source bucket podinfo",
	"lacre suspend source bucket":   "  lacre suspend source bucket podinfo",
	"lacre resume source bucket":    "  lacre resume source bucket podinfo",
	"lacre export source bucket":    "  lacre export source bucket podinfo > podinfo.yaml",
	"lacre delete source bucket":    "  lacre delete source bucket podinfo --silent",
	"lacre reconcile source git":    "  lacre reconcile source git my-secrets",
	"lacre reconcile kustomization": "  lacre reconcile kustomization my-secrets --with-source",
	"lacre suspend source git":      "  lacre suspend source git my-secrets",
	"lacre suspend kustomization":   "  lacre suspend kustomization my-secrets",
	"lacre resume source git":       "  lacre resume source git my-secrets",
	"lacre resume kustomization":    "  lacre resume kustomization my-secrets",
	"lacre export source git":       "  lacre export source git my-secrets > my-secrets.yaml",
	"lacre export kustomization":    "  lacre export kustomization my-secrets > my-secrets.yaml",
	"lacre delete source git":       "  lacre delete source git my-secrets\n  lacre delete source git my-secrets --silent",
	"lacre delete kustomization":    "  lacre delete kustomization my-secrets -n flux-system -s",
	"lacre create source":           "  lacre create source git my-secrets --url=https://github.com/me/secrets --branch=main",
	"lacre create secret":           "  lacre create secret sops sops-age --age-key-file=age.agekey",
	"lacre get sources":             "  lacre get sources git -A",
	"lacre create":                  "  lacre create source git my-secrets --url=https://github.com/me/secrets --branch=main\n  lacre create kustomization my-secrets --source=my-secrets --path=./clusters/cluster0",
	"lacre get":                     "  lacre get kustomizations -A",
	"lacre reconcile":               "  lacre reconcile kustomization my-secrets --with-source",
	"lacre suspend":                 "  lacre suspend kustomization my-secrets",
	"lacre resume":                  "  lacre resume kustomization my-secrets",
	"lacre export":                  "  lacre export kustomization my-secrets",
	"lacre delete":                  "  lacre delete kustomization my-secrets",
	"lacre tree":                    "  lacre tree kustomization my-secrets",
	"lacre reconcile source":        "  lacre reconcile source git my-secrets",
	"lacre suspend source":          "  lacre suspend source git my-secrets",
	"lacre resume source":           "  lacre resume source git my-secrets",
	"lacre export source":           "  lacre export source git my-secrets",
	"lacre delete source":           "  lacre delete source git my-secrets",
}

// decorateOperatorCommands adds examples and name completion to the
// operator commands (get, reconcile, suspend, resume, export, delete) that
// do not set them. (Package cli makes unknown subcommands errors.)
func decorateOperatorCommands(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if ex := operatorExamples[c.CommandPath()]; ex != "" && c.Example == "" {
			c.Example = ex
		}
		if c.ValidArgsFunction == nil && strings.HasSuffix(c.Use, " NAME") && c.Flags().Lookup("namespace") != nil {
			var t target
			switch {
			case c.Parent() != nil && c.Parent().Name() == "source" && c.Name() == "git":
				t = target{sourcev1.GitRepositoryKind}
			case c.Parent() != nil && c.Parent().Name() == "source" && c.Name() == "oci":
				t = target{sourcev1.OCIRepositoryKind}
			case c.Parent() != nil && c.Parent().Name() == "source" && c.Name() == "bucket":
				t = target{sourcev1.BucketKind}
			case c.Name() == "kustomization":
				t = target{kustomizev1.KustomizationKind}
			}
			if t.kind != "" {
				c.ValidArgsFunction = completeFromFlags(t)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeFromFlags completes names using the command's own cluster flags.
func completeFromFlags(t target) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		f := cmd.Flags()
		cf := &clusterFlags{}
		cf.namespace, _ = f.GetString("namespace")
		cf.kubeconfig, _ = f.GetString("kubeconfig")
		cf.context, _ = f.GetString("context")
		return completeNames(cf, t)(cmd, args, toComplete)
	}
}
