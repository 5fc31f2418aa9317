package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/decryptor"
	"github.com/lacre/lacre/internal/source"
)

// clusterFlags are kubectl's: namespace, kubeconfig, context.
type clusterFlags struct {
	namespace, kubeconfig, context string
	export                         bool
	timeout                        time.Duration
}

func (cf *clusterFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&cf.namespace, "namespace", "n", "flux-system", "namespace of the object")
	f.StringVar(&cf.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&cf.context, "context", "", "kubeconfig context")
	f.BoolVar(&cf.export, "export", false, "print the YAML instead of applying it")
	f.DurationVar(&cf.timeout, "timeout", 2*time.Minute, "how long to wait for Ready")
}

func (cf *clusterFlags) client() (client.Client, error) {
	return cf.watchClient()
}

// watchClient is client with Watch, for get -w.
func (cf *clusterFlags) watchClient() (client.WithWatch, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cf.kubeconfig != "" {
		rules.ExplicitPath = cf.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: cf.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster: %v", err)
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: controller.NewScheme()})
}

func (a *app) printYAML(objs ...client.Object) error {
	for i, o := range objs {
		gvks, _, err := controller.NewScheme().ObjectKinds(o)
		if err == nil && len(gvks) > 0 {
			o.GetObjectKind().SetGroupVersionKind(gvks[0])
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		// Drop empty status and creationTimestamp, as flux --export does.
		var m map[string]any
		_ = yaml.Unmarshal(b, &m)
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		b, _ = yaml.Marshal(m)
		if i > 0 || len(objs) > 1 {
			fmt.Fprintln(a.Stdout, "---")
		}
		a.Stdout.Write(b)
	}
	return nil
}

// apply creates or updates objs in the cluster and returns the client.
func (cf *clusterFlags) apply(ctx context.Context, objs ...client.Object) (client.Client, error) {
	c, err := cf.client()
	if err != nil {
		return nil, err
	}
	return c, upsert(ctx, c, objs...)
}

// upsert creates or updates objects (spec and data, not status).
func upsert(ctx context.Context, c client.Client, objs ...client.Object) error {
	for _, o := range objs {
		existing := o.DeepCopyObject().(client.Object)
		err := c.Get(ctx, client.ObjectKeyFromObject(o), existing)
		switch {
		case apierrors.IsNotFound(err):
			if err := c.Create(ctx, o); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			o.SetResourceVersion(existing.GetResourceVersion())
			if err := c.Update(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func waitReady(ctx context.Context, c client.Client, o client.Object, timeout time.Duration, conds func() []metav1.Condition) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err == nil && o.GetGeneration() > 0 {
			if cond := apimeta.FindStatusCondition(conds(), meta.ReadyCondition); cond != nil && cond.ObservedGeneration == o.GetGeneration() {
				if cond.Status == metav1.ConditionTrue {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("not ready: %s", cond.Message)
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (a *app) createCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "create", Short: "Create sources, Kustomizations and decryption Secrets"}
	src := &cobra.Command{Use: "source", Short: "Create sources"}
	src.AddCommand(a.createSourceGitCommand(), a.createSourceOCICommand(), a.createSourceBucketCommand())
	sec := &cobra.Command{Use: "secret", Short: "Create Secrets"}
	sec.AddCommand(a.createSecretSopsCommand())
	cmd.AddCommand(src, a.createKustomizationCommand(), sec)
	return cmd
}

func (a *app) createSourceGitCommand() *cobra.Command {
	var cf clusterFlags
	var url, branch, tag, semver, commit, secretRef, username, password, keyFile, knownHosts string
	var proxySecretRef string
	var interval time.Duration
	var gf gitContentFlags
	cmd := &cobra.Command{
		Use:   "git NAME --url URL [--branch B|--tag T|--tag-semver R|--commit SHA]",
		Short: "Create or update a GitRepository and wait for its artifact",
		Example: `  lacre create source git my-secrets --url=https://github.com/me/secrets --branch=main --interval=1m
  lacre create source git app --url=ssh://git@github.com/me/app --private-key-file=./id_ed25519 --export`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if url == "" {
				return cliapp.Codef(cliapp.CodeGeneric, "--url is required")
			}
			if err := source.ValidateURL(url); err != nil {
				return cliapp.WithCode(cliapp.CodeGeneric, err)
			}
			repo := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: cf.namespace},
				Spec: sourcev1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: interval},
					Reference: &sourcev1.GitRepositoryRef{Branch: branch, Tag: tag, SemVer: semver, Commit: commit}}}
			if branch == "" && tag == "" && semver == "" && commit == "" {
				repo.Spec.Reference.Branch = "master"
			}
			if proxySecretRef != "" {
				repo.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: proxySecretRef}
			}
			if err := gf.apply(repo); err != nil {
				return err
			}
			var objs []client.Object
			switch {
			case secretRef != "":
				repo.Spec.SecretRef = &meta.LocalObjectReference{Name: secretRef}
			case username != "" || keyFile != "":
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: cf.namespace}, StringData: map[string]string{}}
				if username != "" {
					s.StringData["username"], s.StringData["password"] = username, password
				}
				if keyFile != "" {
					data, err := os.ReadFile(keyFile)
					if err != nil {
						return cliapp.Codef(cliapp.CodeGeneric, "--private-key-file: %v", err)
					}
					s.StringData["identity"] = string(data)
					if knownHosts != "" {
						kh, err := os.ReadFile(knownHosts)
						if err != nil {
							return cliapp.Codef(cliapp.CodeGeneric, "--known-hosts-file: %v", err)
						}
						s.StringData["known_hosts"] = string(kh)
					}
				}
				repo.Spec.SecretRef = &meta.LocalObjectReference{Name: args[0]}
				objs = append(objs, s)
			}
			if cf.export {
				// As flux: the export holds the GitRepository only.
				return a.printYAML(repo)
			}
			c, err := cf.apply(cmd.Context(), append(objs, repo)...)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre: GitRepository %s/%s applied, waiting for the artifact\n", cf.namespace, args[0])
			if err := waitReady(cmd.Context(), c, repo, cf.timeout, func() []metav1.Condition { return repo.Status.Conditions }); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "fetched revision: %s\n", repo.Status.Artifact.Revision)
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "repository URL: http(s):// or ssh://")
	f.StringVar(&branch, "branch", "", "branch to follow")
	f.StringVar(&tag, "tag", "", "tag to check out")
	f.StringVar(&semver, "tag-semver", "", "semver range of tags")
	f.StringVar(&commit, "commit", "", "commit to check out")
	f.StringVar(&secretRef, "secret-ref", "", "existing Secret with credentials")
	f.StringVar(&proxySecretRef, "proxy-secret-ref", "", "existing Secret with the proxy address and credentials")
	f.StringVarP(&username, "username", "u", "", "HTTPS user (creates the credentials Secret)")
	f.StringVarP(&password, "password", "p", "", "HTTPS password")
	f.StringVar(&keyFile, "private-key-file", "", "SSH private key (creates the credentials Secret)")
	f.StringVar(&knownHosts, "known-hosts-file", "", "known_hosts for SSH")
	f.DurationVar(&interval, "interval", time.Minute, "how often to check for new commits")
	gf.register(f)
	return cmd
}

// gitContentFlags are flux's `create source git` flags --provider,
// --recurse-submodules and --sparse-checkout-paths.
type gitContentFlags struct {
	provider string
	recurse  bool
	sparse   []string
}

func (g *gitContentFlags) register(f *pflag.FlagSet) {
	f.StringVar(&g.provider, "provider", "", "the Git provider name (generic|aws|azure|github); lacre-cluster honours generic only")
	f.BoolVar(&g.recurse, "recurse-submodules", false, "when enabled, configures the GitRepository source to initialize and include Git submodules in the artifact it produces")
	f.StringSliceVar(&g.sparse, "sparse-checkout-paths", nil, "set paths to sparse checkout in git resource (can specify multiple paths with commas: path1,path2)")
}

func (g *gitContentFlags) apply(repo *sourcev1.GitRepository) error {
	switch g.provider {
	case "", sourcev1.GitProviderGeneric, sourcev1.GitProviderAWS, sourcev1.GitProviderAzure, sourcev1.GitProviderGitHub:
	default:
		return cliapp.Codef(cliapp.CodeGeneric, "source Git provider %q is not supported, must be one of: generic|aws|azure|github", g.provider)
	}
	repo.Spec.Provider, repo.Spec.RecurseSubmodules, repo.Spec.SparseCheckout = g.provider, g.recurse, g.sparse
	return nil
}

func (a *app) createKustomizationCommand() *cobra.Command {
	var cf clusterFlags
	var src, path, provider, decSecret, targetNS, sa, kubeConfigSecret string
	var prune, wait bool
	var interval, retryInterval time.Duration
	var dependsOn, healthChecks []string
	cmd := &cobra.Command{
		Use:   "kustomization NAME --source=GitRepository/NAME[.NS] --path=./...",
		Short: "Create or update a Kustomization and wait for it to be Ready",
		Example: `  lacre create kustomization my-secrets --source=my-secrets --path=./clusters/cluster0 \
    --prune=true --interval=10m --decryption-provider=sops --decryption-secret=sops-gpg`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if src == "" {
				return cliapp.Codef(cliapp.CodeGeneric, "--source is required")
			}
			kind, name := "GitRepository", src
			if k, n, ok := strings.Cut(src, "/"); ok {
				kind, name = k, n
			}
			switch kind {
			case sourcev1.GitRepositoryKind, sourcev1.OCIRepositoryKind, sourcev1.BucketKind, "ExternalArtifact":
			default:
				return cliapp.Codef(cliapp.CodeGeneric, "unknown source kind %q, must be one of: GitRepository|OCIRepository|Bucket|ExternalArtifact", kind)
			}
			srcNS := ""
			if n, ns, ok := strings.Cut(name, "."); ok {
				name, srcNS = n, ns
			}
			if path != "" && !strings.HasPrefix(path, "./") {
				return cliapp.Codef(cliapp.CodeGeneric, "--path must start with ./")
			}
			ks := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: cf.namespace},
				Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: interval}, Path: path, Prune: prune, Wait: wait,
					TargetNamespace: targetNS, ServiceAccountName: sa,
					SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: kind, Name: name, Namespace: srcNS}}}
			if kubeConfigSecret != "" {
				ks.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: kubeConfigSecret}}
			}
			if retryInterval > 0 {
				ks.Spec.RetryInterval = &metav1.Duration{Duration: retryInterval}
			}
			for _, d := range dependsOn {
				dep, err := parseDependsOn(d)
				if err != nil {
					return cliapp.Codef(cliapp.CodeGeneric, "--depends-on %q: %v", d, err)
				}
				ks.Spec.DependsOn = append(ks.Spec.DependsOn, dep)
			}
			for _, h := range healthChecks {
				ref, err := parseHealthCheck(h)
				if err != nil {
					return cliapp.Codef(cliapp.CodeGeneric, "--health-check %q: %v", h, err)
				}
				ks.Spec.HealthChecks = append(ks.Spec.HealthChecks, ref)
			}
			if provider != "" {
				if provider != kustomizev1.DecryptionProviderSOPS {
					return cliapp.Codef(cliapp.CodeGeneric, "unknown decryption provider %q: use sops", provider)
				}
				ks.Spec.Decryption = &kustomizev1.Decryption{Provider: provider}
				if decSecret != "" {
					ks.Spec.Decryption.SecretRef = &meta.LocalObjectReference{Name: decSecret}
				}
			} else if decSecret != "" {
				return cliapp.Codef(cliapp.CodeGeneric, "--decryption-secret needs --decryption-provider=sops")
			}
			if cf.export {
				return a.printYAML(ks)
			}
			c, err := cf.apply(cmd.Context(), ks)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre: Kustomization %s/%s applied, waiting for it to be Ready\n", cf.namespace, args[0])
			if err := waitReady(cmd.Context(), c, ks, cf.timeout, func() []metav1.Condition { return ks.Status.Conditions }); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "applied revision: %s\n", ks.Status.LastAppliedRevision)
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&src, "source", "", "source: [KIND/]NAME[.NAMESPACE], KIND one of GitRepository (default), OCIRepository, Bucket, ExternalArtifact")
	f.StringVar(&path, "path", "", "path in the source, starting with ./")
	f.BoolVar(&prune, "prune", false, "delete objects removed from the source")
	f.BoolVar(&wait, "wait", false, "wait for the applied objects to be healthy")
	f.StringSliceVar(&healthChecks, "health-check", nil, "object to wait for, KIND/NAME.NAMESPACE (repeatable; e.g. Deployment/podinfo.default)")
	f.DurationVar(&interval, "interval", time.Minute, "reconcile interval")
	f.StringVar(&provider, "decryption-provider", "", "decryption provider: sops")
	f.StringVar(&decSecret, "decryption-secret", "", "Secret with the decryption keys ("+decryptor.Entries+")")
	f.StringVar(&targetNS, "target-namespace", "", "namespace for the applied objects")
	f.StringVar(&sa, "service-account", "", "service account to impersonate")
	f.StringSliceVar(&dependsOn, "depends-on", nil, "Kustomization that must be ready before this Kustomization can be applied, supported formats '<name>' and '<namespace>/<name>', also accepts comma-separated values")
	f.StringVar(&kubeConfigSecret, "kubeconfig-secret-ref", "", "Secret with the kubeconfig (key value) of the remote cluster to apply to")
	f.DurationVar(&retryInterval, "retry-interval", 0, "interval at which a failed reconcile is retried (default: --interval)")
	return cmd
}

func (a *app) createSecretSopsCommand() *cobra.Command {
	var cf clusterFlags
	var ageFiles, pgpFiles, vaultAddrs []string
	var vaultToken, awsFile, azureFile, gcpFile string
	cmd := &cobra.Command{
		Use:   "sops NAME [--age-key-file F] [--pgp-key-file F] [--vault-token T --vault-address URL] [--aws-kms-file F] [--azure-kv-file F] [--gcp-kms-file F]",
		Short: "Create the decryption Secret with Flux's entry names (" + decryptor.Entries + ")",
		Example: `  gpg --export-secret-keys --armor "$KEY_FP" > key.asc
  lacre create secret sops sops-gpg --pgp-key-file=key.asc
  lacre create secret sops sops-age --age-key-file=age.agekey --export`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: cf.namespace}, StringData: map[string]string{}}
			// Every entry is checked the way the controller reads it;
			// errors never quote the content.
			type entry struct{ flag, file, name string }
			var entries []entry
			for i, f := range ageFiles {
				entries = append(entries, entry{"--age-key-file", f, fmt.Sprintf("age%d%s", i, decryptor.AgeKeySuffix)})
			}
			for i, f := range pgpFiles {
				entries = append(entries, entry{"--pgp-key-file", f, fmt.Sprintf("key%d%s", i, decryptor.PGPKeySuffix)})
			}
			if vaultToken != "" {
				s.StringData[decryptor.VaultTokenEntry] = vaultToken
			}
			if len(vaultAddrs) > 0 {
				v := strings.Join(vaultAddrs, ",")
				if err := decryptor.Check(decryptor.VaultAddressEntry, []byte(v)); err != nil {
					return cliapp.Codef(cliapp.CodeGeneric, "--vault-address: %v", err)
				}
				s.StringData[decryptor.VaultAddressEntry] = v
			}
			entries = append(entries, entry{"--aws-kms-file", awsFile, decryptor.AWSKMSEntry},
				entry{"--azure-kv-file", azureFile, decryptor.AzureKVEntry}, entry{"--gcp-kms-file", gcpFile, decryptor.GCPKMSEntry})
			for _, e := range entries {
				if e.file == "" {
					continue
				}
				data, err := keysource.ReadBounded(e.file, 1<<20)
				if err != nil {
					return cliapp.Codef(cliapp.CodeGeneric, "%s: %v", e.flag, err)
				}
				if err := decryptor.Check(e.name, data); err != nil {
					return cliapp.Codef(cliapp.CodeGeneric, "%s %s: %v", e.flag, e.file, err)
				}
				s.StringData[e.name] = string(data)
			}
			if len(s.StringData) == 0 {
				return cliapp.Codef(cliapp.CodeGeneric, "give at least one of --age-key-file, --pgp-key-file, --vault-token, --aws-kms-file, --azure-kv-file, --gcp-kms-file")
			}
			if cf.export {
				return a.printYAML(s)
			}
			if _, err := cf.apply(cmd.Context(), s); err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre: Secret %s/%s applied\n", cf.namespace, args[0])
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringSliceVar(&ageFiles, "age-key-file", nil, "age identities file (repeatable)")
	f.StringSliceVar(&pgpFiles, "pgp-key-file", nil, "armored PGP private key (repeatable)")
	f.StringVar(&vaultToken, "vault-token", "", "Vault token for transit decryption")
	f.StringSliceVar(&vaultAddrs, "vault-address", nil, "Vault address the token may be sent to, stored as "+decryptor.VaultAddressEntry+" (repeatable; needed unless the controller runs with --sops-vault-allowlist)")
	f.StringVar(&awsFile, "aws-kms-file", "", "AWS credentials YAML (aws_access_key_id, aws_secret_access_key[, aws_session_token]) stored as "+decryptor.AWSKMSEntry)
	f.StringVar(&azureFile, "azure-kv-file", "", "Azure credentials JSON/YAML (tenantId, clientId, clientSecret, ...) stored as "+decryptor.AzureKVEntry)
	f.StringVar(&gcpFile, "gcp-kms-file", "", "GCP service account key JSON stored as "+decryptor.GCPKMSEntry)
	return cmd
}

// healthKinds maps the kinds flux's --health-check names to API versions.
var healthKinds = map[string]string{
	"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
	"Service": "v1", "Pod": "v1", "PersistentVolumeClaim": "v1", "ConfigMap": "v1", "Secret": "v1", "Namespace": "v1",
	"Job": "batch/v1", "CronJob": "batch/v1", "Ingress": "networking.k8s.io/v1",
	"CustomResourceDefinition": "apiextensions.k8s.io/v1",
	"Kustomization":            kustomizev1.GroupVersion.String(), "GitRepository": sourcev1.GroupVersion.String(),
	"OCIRepository": sourcev1.GroupVersion.String(),
}

// parseHealthCheck reads KIND/NAME[.NAMESPACE], or
// GROUP/VERSION/KIND/NAME[.NAMESPACE] for other kinds.
func parseHealthCheck(s string) (meta.NamespacedObjectKindReference, error) {
	parts := strings.Split(s, "/")
	var apiVersion, kind, rest string
	switch len(parts) {
	case 2:
		kind, rest = parts[0], parts[1]
		apiVersion = healthKinds[kind]
		if apiVersion == "" {
			return meta.NamespacedObjectKindReference{}, fmt.Errorf("unknown kind %q: write GROUP/VERSION/KIND/NAME.NAMESPACE", kind)
		}
	case 4:
		apiVersion, kind, rest = parts[0]+"/"+parts[1], parts[2], parts[3]
	case 3:
		apiVersion, kind, rest = parts[0], parts[1], parts[2] // core: v1/KIND/NAME
	default:
		return meta.NamespacedObjectKindReference{}, errors.New("want KIND/NAME.NAMESPACE")
	}
	name, ns, _ := strings.Cut(rest, ".")
	if kind == "" || name == "" {
		return meta.NamespacedObjectKindReference{}, errors.New("want KIND/NAME.NAMESPACE")
	}
	return meta.NamespacedObjectKindReference{APIVersion: apiVersion, Kind: kind, Name: name, Namespace: ns}, nil
}

// parseDependsOn reads a --depends-on value as flux does: NAME or
// NAMESPACE/NAME.
func parseDependsOn(v string) (meta.DependencyReference, error) {
	ns, name, found := strings.Cut(v, "/")
	if !found {
		ns, name = "", v
	}
	if name == "" || strings.Contains(name, "/") || (found && ns == "") {
		return meta.DependencyReference{}, fmt.Errorf("want NAME or NAMESPACE/NAME")
	}
	return meta.DependencyReference{Name: name, Namespace: ns}, nil
}
