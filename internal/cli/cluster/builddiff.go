package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/build"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/redact"
)

// Bounds on the local tree read by build and diff.
const (
	localMaxFiles     = 20_000
	localMaxFileSize  = 16 << 20
	localMaxTotalSize = 256 << 20
)

// maskedValue replaces Secret values in build output.
const maskedValue = "*** (masked)"

// buildFlags are shared by build and diff.
type buildFlags struct {
	cf          clusterFlags
	path        string
	kfile       string
	decrypt     bool
	showSecrets bool
	requireEnc  bool
}

func (bf *buildFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&bf.cf.namespace, "namespace", "n", "flux-system", "namespace of the Kustomization")
	f.StringVar(&bf.cf.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&bf.cf.context, "context", "", "kubeconfig context")
	f.StringVar(&bf.path, "path", "", "local directory to build (required)")
	f.StringVar(&bf.kfile, "kustomization-file", "", "YAML file holding the Kustomization (instead of reading it from the cluster)")
	f.BoolVar(&bf.decrypt, "decrypt", false, "decrypt SOPS-encrypted resources with the keys at hand (as lacre decrypt finds them)")
	f.BoolVar(&bf.showSecrets, "show-secrets", false, "print Secret values instead of masking them (with --decrypt: decrypted values)")
	f.BoolVar(&bf.requireEnc, "require-encrypted-secrets", false, "refuse Secrets whose values were not SOPS-encrypted in the directory, as the controller's flag does")
}

// readLocalTree reads the regular files below root into memory, and
// lists its directories, skipping links and what a GitRepository's
// artifact leaves out by default (.git, .sops.yaml, …), within the local
// bounds.
func readLocalTree(root string) (artifact.Files, map[string]bool, error) {
	files, dirs := artifact.Files{}, map[string]bool{"": true}
	ignore := gitignore.NewMatcher(artifact.ParseIgnore(artifact.DefaultIgnore, nil))
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignore.Match(strings.Split(rel, "/"), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			dirs[rel] = true
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if len(files) >= localMaxFiles {
			return fmt.Errorf("%s: more than %d files", root, localMaxFiles)
		}
		if info.Size() > localMaxFileSize {
			return fmt.Errorf("%s: larger than %d MiB", p, localMaxFileSize>>20)
		}
		total += info.Size()
		if total > localMaxTotalSize {
			return fmt.Errorf("%s: the files add up to more than %d MiB", root, localMaxTotalSize>>20)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = data
		return nil
	})
	return files, dirs, err
}

// localRoot returns the directory to read for --path and the path of dir
// inside it: the enclosing Git work tree when there is one (so that
// "../base" references resolve as in the cluster), else dir itself.
func localRoot(dir string) (root, rel string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			rel, _ := filepath.Rel(d, abs)
			return d, filepath.ToSlash(rel), nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return abs, "", nil
}

// clusterClient returns a client with a short timeout, or nil and the
// reason when no cluster is configured.
func (bf *buildFlags) clusterClient() (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if bf.cf.kubeconfig != "" {
		rules.ExplicitPath = bf.cf.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: bf.cf.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster: %v", err)
	}
	cfg.Timeout = 15 * time.Second
	return client.New(cfg, client.Options{Scheme: controller.NewScheme()})
}

// loadKustomization returns the Kustomization whose spec the build uses:
// from --kustomization-file, from the cluster, or a default one. c is nil
// when no cluster is reachable.
func (a *app) loadKustomization(ctx context.Context, bf *buildFlags, name string, needCluster bool) (*kustomizev1.Kustomization, client.Client, error) {
	def := &kustomizev1.Kustomization{}
	def.Name, def.Namespace = name, bf.cf.namespace
	def.Spec.Path = bf.path
	var c client.Client
	var cerr error
	if bf.kfile == "" || needCluster {
		c, cerr = bf.clusterClient()
		if cerr != nil && needCluster {
			return nil, nil, cerr
		}
	}
	if bf.kfile != "" {
		data, err := os.ReadFile(bf.kfile)
		if err != nil {
			return nil, nil, fmt.Errorf("--kustomization-file: %v", err)
		}
		ks := &kustomizev1.Kustomization{}
		if err := yaml.UnmarshalStrict(data, ks); err != nil {
			if err2 := yaml.Unmarshal(data, ks); err2 != nil {
				return nil, nil, fmt.Errorf("--kustomization-file %s: not a Kustomization: %v", bf.kfile, err2)
			}
		}
		if ks.Kind != kustomizev1.KustomizationKind {
			return nil, nil, fmt.Errorf("--kustomization-file %s: kind is %q, want %s", bf.kfile, ks.Kind, kustomizev1.KustomizationKind)
		}
		if ks.Name != "" && ks.Name != name {
			return nil, nil, fmt.Errorf("--kustomization-file %s holds Kustomization %q, not %q", bf.kfile, ks.Name, name)
		}
		ks.Name = name
		if ks.Namespace == "" {
			ks.Namespace = bf.cf.namespace
		}
		if needCluster {
			// The inventory (for pruning) is only in the cluster.
			live := &kustomizev1.Kustomization{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ks.Namespace, Name: name}, live); err == nil {
				ks.Status = live.Status
			} else if !apierrors.IsNotFound(err) {
				return nil, nil, fmt.Errorf("Kustomization %s/%s: %v", ks.Namespace, name, redact.Error(err))
			}
		}
		return ks, c, nil
	}
	if cerr != nil {
		a.Infof("%v; building with a default Kustomization spec", cerr)
		return def, nil, nil
	}
	ks := &kustomizev1.Kustomization{}
	err := c.Get(ctx, client.ObjectKey{Namespace: bf.cf.namespace, Name: name}, ks)
	switch {
	case err == nil:
		return ks, c, nil
	case apierrors.IsNotFound(err):
		a.Warnf("Kustomization %s/%s not found in the cluster; using a default spec", bf.cf.namespace, name)
		return def, c, nil
	case needCluster:
		return nil, nil, fmt.Errorf("Kustomization %s/%s: %v", bf.cf.namespace, name, redact.Error(err))
	case apierrors.IsForbidden(err):
		return nil, nil, fmt.Errorf("Kustomization %s/%s: %v", bf.cf.namespace, name, redact.Error(err))
	default:
		a.Warnf("cluster not reachable (%v); using a default Kustomization spec", redact.Error(err))
		return def, nil, nil
	}
}

// localBuild runs the controller's build on the local tree.
func (a *app) localBuild(ctx context.Context, bf *buildFlags, ks *kustomizev1.Kustomization, c client.Client) ([]*unstructured.Unstructured, error) {
	if bf.path == "" {
		return nil, errors.New("--path is required")
	}
	st, err := os.Stat(bf.path)
	if err != nil {
		return nil, fmt.Errorf("--path: %v", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("--path %s is not a directory", bf.path)
	}
	root, rel, err := localRoot(bf.path)
	if err != nil {
		return nil, err
	}
	files, dirs, err := readLocalTree(root)
	if err != nil {
		return nil, err
	}
	opts := build.Options{Path: rel, Spec: ks.Spec, Dirs: dirs, KeepEncrypted: !bf.decrypt, RequireEncryptedSecrets: bf.requireEnc}
	if bf.decrypt {
		ids, order, problems := a.DecryptionKeys()
		opts.Decrypt, opts.Identities, opts.DecryptionOrder = true, ids, order
		if len(opts.Identities) == 0 {
			msg := "--decrypt: no keys found (set SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, GNUPGHOME, VAULT_TOKEN or cloud credentials as for lacre decrypt)"
			for _, e := range problems {
				msg += "\n  - " + e.Error()
			}
			return nil, cliapp.WithCode(cliapp.CodeCouldNotRetrieveKey, errors.New(msg))
		}
	}
	res, err := build.Build(ctx, files, opts)
	if err != nil {
		var fe *build.FileError
		if errors.As(err, &fe) {
			return nil, cliapp.WithCode(cliapp.CodeFor(err), fmt.Errorf("%s: %v", filepath.Join(root, filepath.FromSlash(fe.Path)), fe.Err))
		}
		return nil, cliapp.WithCode(cliapp.CodeFor(err), err)
	}
	if len(res.Objects) == 0 && !hasKustomizationFile(bf.path) {
		return nil, fmt.Errorf("--path %s: no kustomization.yaml and no Kubernetes manifests to build", bf.path)
	}
	if pb := ks.Spec.PostBuild; pb != nil {
		vars, err := a.substitutions(ctx, c, ks)
		if err != nil {
			return nil, err
		}
		if err := build.Substitute(res.Objects, vars, controller.SubstituteOptions(ks, true)); err != nil {
			return nil, fmt.Errorf("post-build substitution failed: %v", err)
		}
	}
	return res.Objects, nil
}

func hasKustomizationFile(dir string) bool {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if st, err := os.Stat(filepath.Join(dir, n)); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

// substitutions collects postBuild variables as the controller does;
// substituteFrom needs the cluster.
func (a *app) substitutions(ctx context.Context, c client.Client, ks *kustomizev1.Kustomization) (map[string]string, error) {
	if c == nil {
		for _, ref := range ks.Spec.PostBuild.SubstituteFrom {
			a.Warnf("no cluster: substituteFrom %s/%s skipped", ref.Kind, ref.Name)
		}
		k := ks.DeepCopy()
		k.Spec.PostBuild.SubstituteFrom = nil
		return controller.SubstitutionVars(ctx, nil, k)
	}
	return controller.SubstitutionVars(ctx, c, ks)
}

func isSecret(u *unstructured.Unstructured) bool {
	return u.GetKind() == "Secret" && u.GetAPIVersion() == "v1"
}

// maskSecret replaces the values of a Secret's data and stringData, and
// drops kubectl's last-applied annotation, which may quote them.
func maskSecret(u *unstructured.Unstructured, mask func(field, key string) string) {
	for _, field := range []string{"data", "stringData"} {
		m, ok := u.Object[field].(map[string]any)
		if !ok {
			continue
		}
		for k := range m {
			m[k] = mask(field, k)
		}
	}
	if ann := u.GetAnnotations(); ann != nil {
		if _, ok := ann[corev1.LastAppliedConfigAnnotation]; ok {
			ann[corev1.LastAppliedConfigAnnotation] = maskedValue
			u.SetAnnotations(ann)
		}
	}
}

func (a *app) buildCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "build", Short: "Build a Kustomization or an OCI artifact from a local directory"}
	var bf buildFlags
	k := &cobra.Command{
		Use:   "kustomization NAME --path DIR [--decrypt] [--kustomization-file F]",
		Short: "Build a local directory as the controller would and print the YAML",
		Long: `Build DIR with the controller's own code (kustomize, generated kustomization.yaml,
the Kustomization's targetNamespace, namePrefix, patches, images, components,
commonMetadata and postBuild substitutions) and print the objects as multi-document
YAML. The Kustomization's spec comes from --kustomization-file, else from the cluster
when one is reachable, else defaults.

Without --decrypt, SOPS-encrypted resources are printed still encrypted. With
--decrypt they are decrypted with the keys lacre decrypt uses (SOPS_AGE_KEY_FILE,
SOPS_AGE_KEY, gpg, Vault, cloud KMS), and Secret values are masked unless
--show-secrets is given.`,
		Example: `  lacre build kustomization my-secrets --path ./clusters/cluster0
  SOPS_AGE_KEY_FILE=key.txt lacre build kustomization my-secrets --path ./clusters/cluster0 --decrypt
  lacre build kustomization apps --path ./apps --kustomization-file ./clusters/cluster0/apps.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bf.path == "" {
				return cliapp.Codef(cliapp.CodeGeneric, "--path is required")
			}
			if _, err := os.Stat(bf.path); err != nil {
				return cliapp.Codef(cliapp.CodeGeneric, "--path: %v", err)
			}
			ks, c, err := a.loadKustomization(cmd.Context(), &bf, args[0], false)
			if err != nil {
				return cliapp.WithCode(cliapp.CodeGeneric, err)
			}
			objs, err := a.localBuild(cmd.Context(), &bf, ks, c)
			if err != nil {
				return err
			}
			for i, u := range objs {
				if bf.decrypt && !bf.showSecrets && isSecret(u) {
					maskSecret(u, func(string, string) string { return maskedValue })
				}
				out, err := yaml.Marshal(u.Object)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(a.Stdout, "---")
				}
				a.Stdout.Write(out)
			}
			return nil
		},
	}
	bf.register(k)
	cmd.AddCommand(k)
	return cmd
}

// objectRef names an object in diff output.
func objectRef(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + "/" + ns + "/" + u.GetName()
	}
	return u.GetKind() + "/" + u.GetName()
}

func toYAML(u *unstructured.Unstructured) (string, error) {
	if u == nil {
		return "", nil
	}
	b, err := yaml.Marshal(u.Object)
	return string(b), err
}

// maskPair masks Secret values of live and merged, keeping whether each
// value changed visible.
func maskPair(live, merged *unstructured.Unstructured) {
	get := func(u *unstructured.Unstructured, field, key string) (any, bool) {
		if u == nil {
			return nil, false
		}
		m, _ := u.Object[field].(map[string]any)
		v, ok := m[key]
		return v, ok
	}
	mask := func(self, other *unstructured.Unstructured, word string) func(field, key string) string {
		return func(field, key string) string {
			v, _ := get(self, field, key)
			if o, ok := get(other, field, key); ok && fmt.Sprint(o) == fmt.Sprint(v) {
				return "***"
			}
			return "*** (" + word + ")"
		}
	}
	l, m := live.DeepCopy(), merged.DeepCopy()
	if live != nil {
		maskSecret(live, mask(l, m, "before"))
	}
	if merged != nil {
		maskSecret(merged, mask(m, l, "after"))
	}
}
