package cluster

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/cli/cliapp"
)

// ociFlags are flux's `create source oci` flags.
type ociFlags struct {
	url, tag, semver, digest, secretRef, certRef, proxyRef, provider, sa string
	verifyProvider, verifySecret                                         string
	insecure                                                             bool
	ignorePaths                                                          []string
	interval                                                             time.Duration
}

func (o *ociFlags) object(name, ns string) (*sourcev1.OCIRepository, error) {
	if o.url == "" {
		return nil, cliapp.Codef(cliapp.CodeGeneric, "--url is required")
	}
	if !strings.HasPrefix(o.url, sourcev1.OCIRepositoryPrefix) {
		return nil, cliapp.Codef(cliapp.CodeGeneric, "--url %q: must start with oci://", o.url)
	}
	if o.semver == "" && o.tag == "" && o.digest == "" {
		return nil, cliapp.Codef(cliapp.CodeGeneric, "one of --tag, --tag-semver or --digest is required")
	}
	switch o.provider {
	case "", sourcev1.GenericOCIProvider, sourcev1.AmazonOCIProvider, sourcev1.AzureOCIProvider, sourcev1.GoogleOCIProvider:
	default:
		return nil, cliapp.Codef(cliapp.CodeGeneric, "source OCI provider %q is not supported, must be one of: generic|aws|azure|gcp", o.provider)
	}
	repo := &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: sourcev1.OCIRepositorySpec{URL: o.url, Interval: metav1.Duration{Duration: o.interval}, Provider: o.provider,
			Insecure: o.insecure, ServiceAccountName: o.sa,
			Reference: &sourcev1.OCIRepositoryRef{Tag: o.tag, SemVer: o.semver, Digest: o.digest}}}
	ref := func(n string) *meta.LocalObjectReference {
		if n == "" {
			return nil
		}
		return &meta.LocalObjectReference{Name: n}
	}
	repo.Spec.SecretRef, repo.Spec.CertSecretRef, repo.Spec.ProxySecretRef = ref(o.secretRef), ref(o.certRef), ref(o.proxyRef)
	if len(o.ignorePaths) > 0 {
		s := strings.Join(o.ignorePaths, "\n")
		repo.Spec.Ignore = &s
	}
	if o.verifyProvider != "" {
		repo.Spec.Verify = &sourcev1.OCIRepositoryVerification{Provider: o.verifyProvider, SecretRef: ref(o.verifySecret)}
	}
	return repo, nil
}

func (a *app) createSourceOCICommand() *cobra.Command {
	var cf clusterFlags
	var o ociFlags
	cmd := &cobra.Command{
		Use:   "oci NAME --url oci://REGISTRY/REPO [--tag T|--tag-semver R|--digest D]",
		Short: "Create or update an OCIRepository and wait for its artifact",
		Example: `  lacre create source oci my-secrets --url=oci://ghcr.io/me/secrets --tag=latest --secret-ref=regcred
  lacre create source oci app --url=oci://registry.example/app --tag-semver='>=1.0.0' --verify-provider=cosign --verify-secret-ref=cosign-pub --export`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := o.object(args[0], cf.namespace)
			if err != nil {
				return err
			}
			if cf.export {
				return a.printYAML(repo)
			}
			c, err := cf.apply(cmd.Context(), repo)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre: OCIRepository %s/%s applied, waiting for the artifact\n", cf.namespace, args[0])
			if err := waitReady(cmd.Context(), c, repo, cf.timeout, func() []metav1.Condition { return repo.Status.Conditions }); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "fetched revision: %s\n", repo.Status.Artifact.Revision)
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "the OCI repository address: oci://REGISTRY/REPO")
	f.StringVar(&o.tag, "tag", "", "the OCI artifact tag")
	f.StringVar(&o.semver, "tag-semver", "", "the OCI artifact tag semver range")
	f.StringVar(&o.digest, "digest", "", "the OCI artifact digest")
	f.StringVar(&o.secretRef, "secret-ref", "", "the name of an existing Secret of type kubernetes.io/dockerconfigjson")
	f.StringVar(&o.certRef, "cert-ref", "", "the name of a Secret holding ca.crt, tls.crt and tls.key for the registry")
	f.StringVar(&o.proxyRef, "proxy-secret-ref", "", "the name of a Secret holding the proxy address and credentials")
	f.StringVar(&o.sa, "service-account", "", "the name of the service account whose imagePullSecrets are used")
	f.StringVar(&o.provider, "provider", sourcev1.GenericOCIProvider, "the OCI provider name (generic|aws|azure|gcp); lacre-cluster honours generic only")
	f.BoolVar(&o.insecure, "insecure", false, "allow connecting to a registry over plain HTTP")
	f.StringSliceVar(&o.ignorePaths, "ignore-paths", nil, "set paths to ignore in the artifact (.gitignore format, comma-separated)")
	f.StringVar(&o.verifyProvider, "verify-provider", "", "the signature verification provider: cosign")
	f.StringVar(&o.verifySecret, "verify-secret-ref", "", "the name of a Secret holding the cosign public keys (*.pub)")
	f.DurationVar(&o.interval, "interval", time.Minute, "how often to check the registry")
	return cmd
}

// getSourcesAllCommand lists every source kind lacre reconciles, one table
// per kind with names as kind/name (as `flux get sources all`); a kind whose
// CRD is not installed is skipped.
func (a *app) getSourcesAllCommand() *cobra.Command {
	var cf clusterFlags
	var all bool
	c := &cobra.Command{Use: "all", Short: "List sources of every kind", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		cl, err := cf.client()
		if err != nil {
			return err
		}
		opts := []client.ListOption{}
		if !all {
			opts = append(opts, client.InNamespace(cf.namespace))
		}
		for i, t := range sourceTargets {
			list := t.newList()
			if err := cl.List(cmd.Context(), list, opts...); err != nil {
				if apimeta.IsNoMatchError(err) {
					continue
				}
				return err
			}
			if i > 0 {
				fmt.Fprintln(a.Stdout)
			}
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			if all {
				fmt.Fprint(w, "NAMESPACE\t")
			}
			fmt.Fprintln(w, "NAME\tREVISION\tSUSPENDED\tREADY\tMESSAGE")
			_ = apimeta.EachListItem(list, func(ro runtime.Object) error {
				o := ro.(client.Object)
				conds, rev, susp, _ := status(o)
				ready, msg := "Unknown", ""
				if c := apimeta.FindStatusCondition(conds, meta.ReadyCondition); c != nil {
					ready, msg = string(c.Status), c.Message
				}
				if all {
					fmt.Fprintf(w, "%s\t", o.GetNamespace())
				}
				fmt.Fprintf(w, "%s/%s\t%s\t%t\t%s\t%s\n", strings.ToLower(t.kind), o.GetName(), rev, susp, ready, msg)
				return nil
			})
			if err := w.Flush(); err != nil {
				return err
			}
		}
		return nil
	}}
	cf.register(c)
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list in every namespace")
	_ = c.Flags().MarkHidden("export")
	_ = c.Flags().MarkHidden("timeout")
	return c
}
