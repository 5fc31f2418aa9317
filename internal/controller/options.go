package controller

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/decryptor"
	"github.com/lacre/lacre/internal/events"
	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/keys/vault"
)

// BindFlags binds the manager's options to fs, with their defaults: the
// flags of `lacre controller`. Complete parses those that need it.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-addr", ":8080", "address of the Prometheus metrics endpoint (0 disables)")
	fs.StringVar(&o.HealthAddr, "health-addr", ":9440", "address of the health probes (0 disables)")
	fs.BoolVar(&o.LeaderElection, "leader-elect", false, "use leader election (for several replicas)")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease")
	fs.IntVar(&o.Concurrent, "concurrent", 4, "reconciles run in parallel per controller")
	fs.StringSliceVar(&o.WatchNamespaces, "watch-namespace", nil, "namespaces to watch (default: all)")
	fs.StringVar(&o.WatchSelector, "watch-label-selector", "", "only reconcile objects with these labels (sharding)")
	fs.StringVar(&o.StoragePath, "storage-path", "", "artifact directory (default: a temporary directory)")
	fs.StringVar(&o.StorageAddr, "storage-addr", "127.0.0.1:0", "artifact server listen address")
	fs.StringVar(&o.StorageAdvAddr, "storage-adv-addr", "", "artifact server address advertised in artifact URLs")
	fs.StringVar(&o.flags.ageSecret, "sops-age-secret", "", "NAME (Flux's form: a Secret in RUNTIME_NAMESPACE whose *"+decryptor.AgeKeySuffix+" entries Kustomizations without decryption.secretRef use) or NAMESPACE/NAME (lacre's: added for every Kustomization in the namespaces --sops-age-secret-namespaces selects)")
	fs.StringVar(&o.flags.ageNamespaces, "sops-age-secret-namespaces", "", "label selector of the namespaces --sops-age-secret applies to (\"*\": all)")
	fs.StringVar(&o.flags.vaultAllowlist, "sops-vault-allowlist", "", "comma-separated Vault addresses (scheme, host and port exact; path by prefix) a "+decryptor.VaultTokenEntry+" may be sent to (default: those its decryption Secret names in "+decryptor.VaultAddressEntry+"; \"all\": any, as Flux; \"none\": none)")
	fs.BoolVar(&o.Decryption.AmbientCloudCredentials, "ambient-cloud-credentials", false, "let Kustomizations use the controller's own AWS/GCP/Azure identity for KMS keys")
	fs.BoolVar(&o.NoCrossNamespaceRefs, "no-cross-namespace-refs", false, "refuse Kustomizations whose sourceRef or dependsOn names another namespace (Ready=False, Stalled, AccessDenied)")
	fs.BoolVar(&o.KubeConfig.InsecureExec, "insecure-kubeconfig-exec", false, "allow exec credential plugins in spec.kubeConfig kubeconfigs (Flux's flag)")
	fs.BoolVar(&o.KubeConfig.InsecureTLS, "insecure-kubeconfig-tls", false, "allow spec.kubeConfig kubeconfigs that disable TLS verification (Flux's flag)")
	fs.StringVar(&o.DefaultServiceAccount, "default-service-account", "", "ServiceAccount impersonated, in the Kustomization's namespace, when spec.serviceAccountName is empty (default: the controller's own identity)")
	fs.Int64Var(&o.flags.maxArtifactMiB, "max-artifact-size", artifact.DefaultMaxTotalSize>>20, "MiB a Git checkout or an artifact may hold, packed or unpacked (over it: Ready=False, "+sourcev1.ArtifactTooLargeReason+")")
	fs.IntVar(&o.Limits.MaxFiles, "max-artifact-files", artifact.DefaultMaxFiles, "files a Git checkout or an artifact may hold")
	fs.Int64Var(&o.flags.artifactCacheMiB, "artifact-cache-size", artifact.DefaultCacheSize>>20, "MiB of unpacked artifacts the Kustomization controller keeps in memory")
	fs.StringArrayVar(&o.OverrideManagers, "override-manager", nil, "field manager whose fields are taken over and reverted like kubectl's unless ssa: Merge (repeatable; Flux's flag)")
	fs.StringVar(&o.flags.customStageKinds, "custom-apply-stage-kinds", "", "comma-separated group/Kind (Kind for the core group) applied in a stage of their own, after CRDs, Namespaces, ClusterRoles and classes (Flux's flag)")
	fs.StringVar(&o.EventsAddr, "events-addr", "", "URL events are also POSTed to in Flux's event API format (Flux's notification-controller, e.g. http://notification-controller.flux-system.svc.cluster.local./)")
	fs.DurationVar(&o.RequeueDependency, "requeue-dependency", 30*time.Second, "interval at which a Kustomization waiting for its dependencies or its source's artifact is tried again")
	fs.Int64Var(&o.flags.artifactBudgetMiB, "max-concurrent-artifact-size", 0, "MiB all Git checkouts and artifact unpacks may hold at once, whatever --concurrent is; over it a reconcile waits (default: twice --max-artifact-size)")
	fs.BoolVar(&o.RequireEncryptedSecrets, "require-encrypted-secrets", false, "refuse Kubernetes Secrets committed to Git without SOPS encryption")
	fs.BoolVar(&o.flags.allowRemoteBases, "allow-remote-bases", false, "let kustomize fetch remote bases and resources (git repositories, http(s) URLs), as Flux does by default")
	fs.BoolVar(&o.flags.noRemoteBases, "no-remote-bases", true, "Flux's flag: false allows remote bases (as --allow-remote-bases); lacre's default is true")
	fs.StringVar(&o.flags.featureGates, "feature-gates", "", "Flux's feature gates, NAME=BOOL comma-separated; supported: "+featureStrictSubstitutions+" (default true), "+featureAdditiveCELDependencyCheck+" (default false), "+featureExternalArtifact+" (default false)")
}

// featureStrictSubstitutions is Flux's feature gate for strict postBuild
// substitution.
const featureStrictSubstitutions = "StrictPostBuildSubstitutions"

// featureAdditiveCELDependencyCheck is Flux's feature gate making a
// dependsOn[].readyExpr add to the built-in readiness check instead of
// replacing it.
const featureAdditiveCELDependencyCheck = "AdditiveCELDependencyCheck"

// completeBuild parses --feature-gates and the remote-bases flags.
func (o *Options) completeBuild() error {
	o.Build.AllowRemoteBases = o.flags.allowRemoteBases || !o.flags.noRemoteBases
	for _, kv := range strings.Split(o.flags.featureGates, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("--feature-gates: %q needs =true or =false", kv)
		}
		switch strings.TrimSpace(k) {
		case featureStrictSubstitutions:
			o.Build.LaxSubstitutions = !on
		case featureAdditiveCELDependencyCheck:
			o.AdditiveCELDependencyCheck = on
		case featureExternalArtifact:
			o.AllowExternalArtifact = on
		default:
			return fmt.Errorf("--feature-gates: %q is not supported (supported: %s, %s, %s)", k, featureStrictSubstitutions, featureAdditiveCELDependencyCheck, featureExternalArtifact)
		}
	}
	return nil
}

// completeAgeSecret parses --sops-age-secret: Flux's NAME (a Secret in
// RuntimeNamespace, used by Kustomizations without decryption.secretRef,
// in the namespaces --sops-age-secret-namespaces selects, all when
// unset) or lacre's NAMESPACE/NAME (added for every Kustomization in the
// namespaces --sops-age-secret-namespaces selects, which is required).
func (o *Options) completeAgeSecret() error {
	s := o.flags.ageSecret
	if s == "" {
		return nil
	}
	ns, name, scoped := strings.Cut(s, "/")
	if !scoped {
		ns, name = o.RuntimeNamespace, s
		if ns == "" {
			return fmt.Errorf("--sops-age-secret %q names a Secret in the controller's namespace: set RUNTIME_NAMESPACE (as Flux's deployment does), or give NAMESPACE/NAME", s)
		}
		o.Decryption.DefaultAgeFallbackOnly = true
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("--sops-age-secret must be NAME or NAMESPACE/NAME, got %q", s)
	}
	sel := labels.Everything()
	switch o.flags.ageNamespaces {
	case "":
		if scoped {
			return errors.New("--sops-age-secret NAMESPACE/NAME needs --sops-age-secret-namespaces (a namespace label selector; \"*\" for every namespace)")
		}
	case "*":
	default:
		var err error
		if sel, err = labels.Parse(o.flags.ageNamespaces); err != nil {
			return fmt.Errorf("--sops-age-secret-namespaces: %v", err)
		}
	}
	o.Decryption.DefaultAgeSecret = types.NamespacedName{Namespace: ns, Name: name}
	o.Decryption.DefaultAgeNamespaces = sel
	return nil
}

// Complete parses the flags BindFlags bound as strings
// (--sops-age-secret, --sops-age-secret-namespaces,
// --sops-vault-allowlist) or in MiB (--max-artifact-size,
// --artifact-cache-size, --max-concurrent-artifact-size) and checks --default-service-account. Errors
// name the flag.
func (o *Options) Complete() error {
	if err := o.completeAgeSecret(); err != nil {
		return err
	}
	if err := o.completeBuild(); err != nil {
		return err
	}
	if sa := o.DefaultServiceAccount; sa != "" {
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			return fmt.Errorf("--default-service-account %q: %s", sa, strings.Join(errs, "; "))
		}
	}
	if n := o.flags.maxArtifactMiB; n != 0 {
		if n < 0 || n > 1<<20 {
			return fmt.Errorf("--max-artifact-size must be between 1 and %d MiB, got %d", 1<<20, n)
		}
		o.Limits.MaxTotalSize = n << 20
	}
	if n := o.flags.artifactCacheMiB; n != 0 {
		if n < 0 || n > 1<<20 {
			return fmt.Errorf("--artifact-cache-size must be between 1 and %d MiB, got %d", 1<<20, n)
		}
		o.ArtifactCacheSize = n << 20
	}
	if n := o.flags.artifactBudgetMiB; n != 0 {
		if n < 0 || n > 1<<20 {
			return fmt.Errorf("--max-concurrent-artifact-size must be between 1 and %d MiB, got %d", 1<<20, n)
		}
		o.ArtifactBudget = n << 20
	}
	if o.Limits.MaxFiles < 0 {
		return fmt.Errorf("--max-artifact-files must not be negative, got %d", o.Limits.MaxFiles)
	}
	if s := o.flags.customStageKinds; s != "" {
		kinds, err := inventory.ParseStageKinds(s)
		if err != nil {
			return fmt.Errorf("--custom-apply-stage-kinds: %v", err)
		}
		o.CustomStageKinds = kinds
	}
	if err := events.ValidateAddress(o.EventsAddr); err != nil {
		return err
	}
	if o.RequeueDependency < 0 {
		return fmt.Errorf("--requeue-dependency must not be negative, got %s", o.RequeueDependency)
	}
	switch v := strings.TrimSpace(o.flags.vaultAllowlist); v {
	case "":
		// The addresses each decryption Secret names (decryptor.VaultAddressEntry).
	case "all":
		o.Decryption.VaultAnyAddress = true
	default:
		list, err := vault.ParseAllowlist(v)
		if err != nil {
			return fmt.Errorf("--sops-vault-allowlist: %v", err)
		}
		o.Decryption.VaultAllowlist = list
	}
	return nil
}

// artifactBudget is ArtifactBudget or its default: twice the per-artifact
// limit, so one checkout of the largest allowed repository (or two
// smaller ones) is in flight at a time with the defaults (512 MiB, half
// the installed Deployment's 1 GiB memory limit; the artifact cache's
// 256 MiB and the process's own memory fit in the rest).
func (o *Options) artifactBudget() int64 {
	if o.ArtifactBudget > 0 {
		return o.ArtifactBudget
	}
	return 2 * o.Limits.WithDefaults().MaxTotalSize
}
