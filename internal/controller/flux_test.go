package controller

import (
	"context"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/config/crd"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// Flux fidelity of builds (issue 14 items 5, 7 and 8) on the real API
// server.

// TestPostBuildLikeFlux: postBuild substitutes with Flux's syntax (globs,
// defaults, $$ escapes, newlines removed from values), leaves objects as
// they are when no variable is defined, and applies lacre's own CRDs (whose
// descriptions hold ${var:position}) because they are labelled
// kustomize.toolkit.fluxcd.io/substitute: disabled.
func TestPostBuildLikeFlux(t *testing.T) {
	g, ns := clusterTest(t)
	files := map[string]string{
		"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: subst\n  namespace: " + ns + "\ndata:\n" +
			"  a: ${cluster}\n  b: ${region%%-*}\n  c: ${missing:=dflt}\n  d: $${literal}\n  e: ${region/#eu/us}\n",
		"novars/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: novars\n  namespace: " + ns + "\ndata:\n  a: ${nothing}\n  b: pa$$word\n",
	}
	crds, err := fs.Glob(crd.Bases, "bases/*.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	for _, n := range crds {
		b, err := fs.ReadFile(crd.Bases, n)
		g.Expect(err).NotTo(HaveOccurred())
		files["crds/"+strings.TrimPrefix(n, "bases/")] = string(b)
	}
	g.Expect(files["crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml"]).To(ContainSubstring("${var:position}"))
	repo := newGitRepo(t, "postbuild")
	repo.Commit("postbuild", files)
	createSource(t, g, ns, repo.URL())
	apps := newKS(ns, "apps", "./apps")
	apps.Spec.PostBuild = &kustomizev1.PostBuild{Substitute: map[string]string{"cluster": "pr\nod\n", "region": "eu-west-1"}}
	novars := newKS(ns, "novars", "./novars")
	novars.Spec.PostBuild = &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: "absent", Optional: true}}}
	crdKS := newKS(ns, "crds", "./crds")
	crdKS.Spec.Prune = false // the suite's own CRDs: never delete them
	crdKS.Spec.PostBuild = &kustomizev1.PostBuild{Substitute: map[string]string{"var": "oops"}}
	for _, k := range []*kustomizev1.Kustomization{apps, novars, crdKS} {
		g.Expect(testClient.Create(testCtx, k)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "apps")
		g.Expect(getCM(g, ns, "subst").Data).To(Equal(map[string]string{"a": "prod", "b": "eu", "c": "dflt", "d": "${literal}", "e": "us-west-1"}))
		ksReady(g, ns, "novars")
		g.Expect(getCM(g, ns, "novars").Data).To(Equal(map[string]string{"a": "${nothing}", "b": "pa$$word"}))
		ksReady(g, ns, "crds")
		g.Expect(ksReady(g, ns, "crds").Status.Inventory.Entries).To(HaveLen(len(crds)))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())

	// Strict by default (Flux's StrictPostBuildSubstitutions): an unset
	// variable without a default fails the build, naming it.
	repo.Commit("unset", map[string]string{"apps/cm.yaml": strings.Replace(files["apps/cm.yaml"], "${cluster}", "${unset_var}", 1)})
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, ns, "apps", kustomizev1.BuildFailedReason)
		g.Expect(c.Message).To(ContainSubstring(`variable not set (strict mode): "unset_var"`))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
}

// sopsSecretCRD installs a SopsSecret CRD (as sops-secrets-operator's,
// keeping unknown fields, sops included).
func sopsSecretCRD(t *testing.T, g Gomega) {
	t.Helper()
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: sopssecrets.test.lacre.dev
spec:
  group: test.lacre.dev
  names: {kind: SopsSecret, plural: sopssecrets, singular: sopssecret, listKind: SopsSecretList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`), &u.Object)).To(Succeed())
	err := testClient.Create(testCtx, u)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx, time.Minute)
	defer cancel()
	g.Expect(crd.Wait(ctx, testClient, u)).To(Succeed())
}

func getSopsSecret(g Gomega, ns, name string) map[string]any {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("test.lacre.dev/v1")
	u.SetKind("SopsSecret")
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
	return u.Object
}

// TestDecryptionLikeFlux: with decryption configured, an encrypted custom
// resource is decrypted unless annotated decrypt: disabled (then applied
// as it is); a secretGenerator envs file without .env is read as dotenv;
// configMapGenerator inputs stay as they are. A decryption Secret with no
// recognised entry is accepted. Without decryption, an encrypted
// SopsSecret is applied as it is and only an encrypted Secret is refused.
func TestDecryptionLikeFlux(t *testing.T) {
	g, ns := clusterTest(t)
	sopsSecretCRD(t, g)
	id, r := newAgeKey(t)
	enc := func(name, plain, regex string) string {
		f := formats.FormatForPath(name)
		out, err := sopsfile.Encrypt(testCtx, []byte(plain), sopsfile.EncryptOptions{InputFormat: f, OutputFormat: f, Groups: [][]keys.Recipient{{r}}, Rules: sopsfile.Rules{EncryptedRegex: regex}})
		g.Expect(err).NotTo(HaveOccurred())
		return string(out)
	}
	sopsSecret := func(name, ann string) string {
		return "apiVersion: test.lacre.dev/v1\nkind: SopsSecret\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\n" + ann + "spec:\n  k: " + guideCanary + "\n"
	}
	disabled := "  annotations:\n    kustomize.toolkit.fluxcd.io/decrypt: disabled\n"
	repo := newGitRepo(t, "decrypt")
	repo.Commit("decrypt", map[string]string{
		"a/kustomization.yaml": "namespace: " + ns + "\nresources: [op.yaml, kept.yaml]\n" +
			"secretGenerator:\n  - name: gen\n    options: {disableNameSuffixHash: true}\n    envs: [secrets.txt]\n" +
			"configMapGenerator:\n  - name: cfg\n    options: {disableNameSuffixHash: true}\n    files: [settings.json]\n",
		"a/op.yaml":         enc("op.yaml", sopsSecret("op", ""), "^spec$"),
		"a/kept.yaml":       enc("kept.yaml", sopsSecret("kept", disabled), "^spec$"),
		"a/secrets.txt":     enc("secrets.env", "API_KEY="+guideCanary+"\n", ""),
		"a/settings.json":   enc("settings.json", `{"token": "`+guideCanary+`"}`, ""),
		"b/cm.yaml":         cmYAML(ns, "keyless"),
		"c/raw.yaml":        enc("raw.yaml", sopsSecret("raw", ""), "^spec$"),
		"d/basic-auth.yaml": encryptFor(t, r, basicAuth(ns)),
	})
	putAgeSecret(g, ns, "sops-age", id)
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-keys"},
		StringData: map[string]string{"README": "no key here"}})).To(Succeed())
	createSource(t, g, ns, repo.URL())
	withDecryption := func(k *kustomizev1.Kustomization, secret string) *kustomizev1.Kustomization {
		k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: secret}}
		return k
	}
	for _, k := range []*kustomizev1.Kustomization{
		withDecryption(newKS(ns, "a", "./a"), "sops-age"), withDecryption(newKS(ns, "b", "./b"), "no-keys"),
		newKS(ns, "c", "./c"), newKS(ns, "d", "./d"),
	} {
		g.Expect(testClient.Create(testCtx, k)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "a")
		g.Expect(getSopsSecret(g, ns, "op")).NotTo(HaveKey("sops"))
		g.Expect(getSopsSecret(g, ns, "op")["spec"]).To(HaveKeyWithValue("k", guideCanary))
		kept := getSopsSecret(g, ns, "kept")
		g.Expect(kept).To(HaveKey("sops"))
		g.Expect(kept["spec"].(map[string]any)["k"]).To(HavePrefix("ENC["))
		sec := &corev1.Secret{}
		g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "gen"}, sec)).To(Succeed())
		g.Expect(string(sec.Data["API_KEY"])).To(Equal(guideCanary))
		cfg := getCM(g, ns, "cfg").Data["settings.json"]
		g.Expect(cfg).To(ContainSubstring("ENC["))
		g.Expect(cfg).NotTo(ContainSubstring(guideCanary))

		ksReady(g, ns, "b")
		getCM(g, ns, "keyless")

		ksReady(g, ns, "c")
		g.Expect(getSopsSecret(g, ns, "raw")).To(HaveKey("sops"))

		c := ksFailed(g, ns, "d", kustomizev1.DecryptionFailedReason)
		g.Expect(c.Message).To(ContainSubstring("configuring decryption is required"))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
}

// startWithFlags runs a manager of its own, configured by flags as
// `lacre controller` is, for objects labelled isolatedLabel=value.
func startWithFlags(t *testing.T, value, runtimeNamespace string, args ...string) {
	t.Helper()
	var o Options
	fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.BindFlags(fl)
	if err := fl.Parse(args); err != nil {
		t.Fatal(err)
	}
	o.RuntimeNamespace = runtimeNamespace
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	o.Config, o.Concurrent, o.WatchSelector = restConfig(testEnv), 2, isolatedLabel+"="+value
	mgr, err := NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	tapLogs(t, io.Discard)
	ctx, cancel := context.WithCancel(testCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestBuildFlagsLikeFlux runs the controller with Flux's flags:
// --feature-gates=StrictPostBuildSubstitutions=false (an unset variable
// becomes ""), --no-remote-bases=false (kustomize clones a remote base)
// and --sops-age-secret=NAME (a Secret in RUNTIME_NAMESPACE decrypts for
// Kustomizations without decryption.secretRef).
func TestBuildFlagsLikeFlux(t *testing.T) {
	g, ns := clusterTest(t)
	startWithFlags(t, "flux-flags", ns, "--feature-gates=StrictPostBuildSubstitutions=false", "--no-remote-bases=false", "--sops-age-secret=flux-age")
	lbl := map[string]string{isolatedLabel: "flux-flags"}
	srv := gittest.New(t, "", "")
	bases := srv.NewRepo("bases", "main")
	bases.Commit("base", map[string]string{"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": cmYAML(ns, "remote-cm")})
	id, _ := age.GenerateX25519Identity()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	repo := srv.NewRepo("apps", "main")
	repo.Commit("apps", map[string]string{
		"lax/cm.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lax\n  namespace: " + ns + "\ndata:\n  a: x${unset}y\n  b: ${set}\n",
		"remote/kustomization.yaml": "resources:\n  - " + bases.URL() + "/base?ref=main\n",
		"age/basic-auth.yaml":       encryptFor(t, r, basicAuth(ns)),
	})
	putAgeSecret(g, ns, "flux-age", id)
	src := gitRepo(ns, "my-secrets", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Labels = lbl
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	lax := newKS(ns, "lax", "./lax")
	lax.Spec.PostBuild = &kustomizev1.PostBuild{Substitute: map[string]string{"set": "v"}}
	ageKS := newKS(ns, "age", "./age")
	ageKS.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops"}
	for _, k := range []*kustomizev1.Kustomization{lax, newKS(ns, "remote", "./remote"), ageKS} {
		k.Labels = lbl
		g.Expect(testClient.Create(testCtx, k)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "lax")
		g.Expect(getCM(g, ns, "lax").Data).To(Equal(map[string]string{"a": "xy", "b": "v"}))
		ksReady(g, ns, "remote")
		getCM(g, ns, "remote-cm")
		ksReady(g, ns, "age")
		g.Expect(secretValue(g, ns, "basic-auth")).To(Equal(guideCanary))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestFluxFlagValues: Flux's values of --sops-age-secret, --no-remote-bases
// and --feature-gates are accepted; lacre's NAMESPACE/NAME stays beside
// Flux's NAME; errors name the flag.
func TestFluxFlagValues(t *testing.T) {
	for _, c := range []struct {
		args    []string
		runtime string
		check   func(o *Options) bool
		err     string
	}{
		{nil, "", func(o *Options) bool {
			return !o.Build.AllowRemoteBases && !o.Build.LaxSubstitutions && !o.AdditiveCELDependencyCheck
		}, ""},
		{[]string{"--sops-age-secret=sops-age"}, "flux-system", func(o *Options) bool {
			return o.Decryption.DefaultAgeSecret.String() == "flux-system/sops-age" && o.Decryption.DefaultAgeFallbackOnly && o.Decryption.DefaultAgeNamespaces.Empty()
		}, ""},
		{[]string{"--sops-age-secret=sops-age"}, "", nil, "RUNTIME_NAMESPACE"},
		{[]string{"--sops-age-secret=ops/sops-age", "--sops-age-secret-namespaces=team=a"}, "", func(o *Options) bool {
			return o.Decryption.DefaultAgeSecret.String() == "ops/sops-age" && !o.Decryption.DefaultAgeFallbackOnly
		}, ""},
		{[]string{"--sops-age-secret=ops/sops-age"}, "", nil, "--sops-age-secret-namespaces"},
		{[]string{"--no-remote-bases=false"}, "", func(o *Options) bool { return o.Build.AllowRemoteBases }, ""},
		{[]string{"--no-remote-bases"}, "", func(o *Options) bool { return !o.Build.AllowRemoteBases }, ""},
		{[]string{"--allow-remote-bases"}, "", func(o *Options) bool { return o.Build.AllowRemoteBases }, ""},
		{[]string{"--feature-gates=StrictPostBuildSubstitutions=false"}, "", func(o *Options) bool { return o.Build.LaxSubstitutions }, ""},
		{[]string{"--feature-gates=StrictPostBuildSubstitutions=true"}, "", func(o *Options) bool { return !o.Build.LaxSubstitutions }, ""},
		{[]string{"--feature-gates=AdditiveCELDependencyCheck=true"}, "", func(o *Options) bool { return o.AdditiveCELDependencyCheck }, ""},
		{[]string{"--feature-gates=ExternalArtifact=true"}, "", func(o *Options) bool { return o.AllowExternalArtifact }, ""},
		{[]string{"--feature-gates=Nope=true"}, "", nil, "--feature-gates"},
	} {
		var o Options
		fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o.BindFlags(fl)
		if err := fl.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		o.RuntimeNamespace = c.runtime
		err := o.Complete()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: %v, want an error naming %s", c.args, err, c.err)
			}
			continue
		}
		if err != nil || !c.check(&o) {
			t.Errorf("%v: %v %+v %+v", c.args, err, o.Build, o.Decryption)
		}
	}
}
