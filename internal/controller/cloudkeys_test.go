package controller

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"filippo.io/age"

	"github.com/aws/aws-sdk-go-v2/credentials"
	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/keys/awskms"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/keys/vault/vaulttest"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// TestSeedGuideAWSKMS is the guide's AWS KMS variant: files encrypted with
// a KMS key (and an encryption context), static credentials in the
// decryption Secret as sops.aws-kms, the KMS a local server speaking AWS's
// wire protocol. A second reconcile of the same revision calls KMS no more.
func TestSeedGuideAWSKMS(t *testing.T) {
	g, sys, app := guideTest(t)
	arn := testKMS.CreateKey("eu-west-1")
	r, err := awskms.NewRecipient(awskms.Key{ARN: arn, Context: map[string]string{"cluster": "cluster0"}}, awskms.Options{
		Endpoint: testKMS.URL, Credentials: credentials.NewStaticCredentialsProvider(testKMS.AccessKeyID, testKMS.SecretAccessKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	repo := newGitRepo(t, "secrets")
	repo.Commit("secrets", map[string]string{"clusters/cluster0/basic-auth.yaml": encryptFor(t, r, basicAuth(app))})

	// A Secret with the wrong credentials first: a clear condition naming
	// the key, no credential in it.
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: "sops-aws"},
		StringData: map[string]string{"sops.aws-kms": "aws_access_key_id: AKIAWRONGWRONGWRONG0\naws_secret_access_key: wrong-secret-access-key\n"}})).To(Succeed())
	createSource(t, g, sys, repo.URL())
	createKS(g, sys, "sops-aws")
	g.Eventually(func(g Gomega) {
		c := condition(g, getKS(g, sys, "my-secrets").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring(arn))
		g.Expect(c.Message).To(ContainSubstring("UnrecognizedClientException"))
		g.Expect(c.Message).NotTo(ContainSubstring("wrong-secret-access-key"))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())

	sec := &corev1.Secret{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: sys, Name: "sops-aws"}, sec)).To(Succeed())
	sec.StringData = map[string]string{"sops.aws-kms": "aws_access_key_id: " + testKMS.AccessKeyID + "\naws_secret_access_key: " + testKMS.SecretAccessKey + "\n"}
	g.Expect(testClient.Update(testCtx, sec)).To(Succeed())
	requestReconcile(g, getKS(g, sys, "my-secrets"))
	g.Eventually(func(g Gomega) {
		ksReady(g, sys, "my-secrets")
		g.Expect(secretValue(g, app, "basic-auth")).To(Equal(guideCanary))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	last := testKMS.Last()
	g.Expect(last.Target).To(Equal("TrentService.Decrypt"))
	g.Expect(last.KeyID).To(Equal(arn))
	g.Expect(last.Context).To(HaveKeyWithValue("cluster", "cluster0"))

	decrypts := testKMS.Decrypts.Load()
	reconcileHandled(g, sys, "my-secrets", true)
	g.Expect(testKMS.Decrypts.Load()).To(Equal(decrypts), "an unchanged revision called KMS again")

	// Metrics: the wrong credentials counted as no_key, then success; a
	// duration and a Ready=True gauge for this object; no value anywhere.
	g.Expect(testutil.ToFloat64(Decryptions.WithLabelValues("no_key"))).To(BeNumerically(">=", 1))
	g.Expect(testutil.ToFloat64(Decryptions.WithLabelValues("success"))).To(BeNumerically(">=", 1))
	g.Expect(testutil.ToFloat64(ReconcileCondition.WithLabelValues("Kustomization", sys, "my-secrets", "Ready", "True"))).To(Equal(1.0))
	g.Expect(testutil.CollectAndCount(ReconcileDuration)).To(BeNumerically(">=", 2))
	mfs, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		g.Expect(mf.String()).NotTo(ContainSubstring(guideCanary))
		g.Expect(mf.String()).NotTo(ContainSubstring(testKMS.SecretAccessKey))
	}
}

// TestDefaultAgeSecretScopedByNamespace: the operator's default age key
// decrypts for Kustomizations in the namespaces its selector names and for
// no other, unlike Flux's global key.
func TestDefaultAgeSecretScopedByNamespace(t *testing.T) {
	needCluster(t)
	g := NewWithT(t)
	if err := testClient.Create(testCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: defaultAgeNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: defaultAgeNamespace, Name: "sops-age-default"},
		StringData: map[string]string{"default.agekey": id.String()}})).To(Succeed())
	defer testClient.Delete(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: defaultAgeNamespace, Name: "sops-age-default"}})

	srv := gittest.New(t, "", "")
	run := func(selected bool) (string, string) {
		ns := "t-default-age-other"
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		if selected {
			ns = "t-default-age-tenant"
			n = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{defaultAgeLabel: "true"}}}
		}
		g.Expect(testClient.Create(testCtx, n)).To(Succeed())
		repo := srv.NewRepo(ns, "main")
		repo.Commit("secrets", map[string]string{"clusters/cluster0/basic-auth.yaml": encryptFor(t, r, basicAuth(ns))})
		createSource(t, g, ns, repo.URL())
		createKS(g, ns, "")
		return ns, repo.URL()
	}
	tenant, _ := run(true)
	other, _ := run(false)
	g.Eventually(func(g Gomega) {
		ksReady(g, tenant, "my-secrets")
		g.Expect(secretValue(g, tenant, "basic-auth")).To(Equal(guideCanary))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, getKS(g, other, "my-secrets").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring("no identity of this type is available"))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	err := testClient.Get(testCtx, client.ObjectKey{Namespace: other, Name: "basic-auth"}, &corev1.Secret{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the default key decrypted for an unselected namespace")
}

// TestVaultAllowlist: with --sops-vault-allowlist, a file naming another
// Vault address cannot make the controller send the tenant's token there.
func TestVaultAllowlist(t *testing.T) {
	evil := vaulttest.New("tenant-vault-token")
	defer evil.Close()
	list, err := vault.ParseAllowlist("https://vault.internal.example:8200")
	if err != nil {
		t.Fatal(err)
	}
	d := DecryptionOptions{VaultAllowlist: list}
	ids, err := d.SecretIdentities(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "sops-hcvault"},
		Data: map[string][]byte{"sops.vault-token": []byte("tenant-vault-token\n")}})
	if err != nil || len(ids) != 1 {
		t.Fatalf("identities: %v %v", ids, err)
	}
	s := &keys.Stanza{Type: keys.TypeVault, Enc: "vault:v1:AAAA", Fields: map[string]string{"vault_address": evil.URL, "engine_path": "transit", "key_name": "k"}}
	_, err = ids[0].Unwrap(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "allowlist") || strings.Contains(err.Error(), "tenant-vault-token") {
		t.Fatalf("unwrap: %v", err)
	}
	if n := evil.Decrypts.Load(); n != 0 {
		t.Fatalf("the token was sent to a Vault outside the allowlist (%d requests)", n)
	}
}

// TestGeneratorsAndEncryptedConfigMap: a secretGenerator fed by encrypted
// dotenv, JSON and binary files (the binary one made by the real sops CLI
// when it is installed) and an encrypted ConfigMap, all decrypted in
// memory and applied.
func TestGeneratorsAndEncryptedConfigMap(t *testing.T) {
	g, ns := clusterTest(t)
	id, _ := age.GenerateX25519Identity()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	enc := func(name string, plain []byte, rules sopsfile.Rules) string {
		f := formats.FormatForPath(name)
		out, err := sopsfile.Encrypt(testCtx, plain, sopsfile.EncryptOptions{InputFormat: f, OutputFormat: f, Groups: [][]keys.Recipient{{r}}, Rules: rules})
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, '\n', 'C', 'A', 'N', 'A', 'R', 'Y'}
	binEnc := enc("cert.bin", bin, sopsfile.Rules{})
	if sops, err := exec.LookPath("sops"); err == nil {
		dir := t.TempDir()
		p := filepath.Join(dir, "cert.bin")
		os.WriteFile(p, bin, 0o600)
		cmd := exec.Command(sops, "encrypt", "--age", id.Recipient().String(), "--input-type", "binary", "--output-type", "binary", p)
		cmd.Env = append(os.Environ(), "SOPS_DISABLE_VERSION_CHECK=1", "HOME="+dir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sops encrypt: %v", err)
		}
		binEnc = string(out)
	}
	repo := newGitRepo(t, "gen")
	repo.Commit("generators", map[string]string{
		"apps/kustomization.yaml": "namespace: " + ns + "\nresources:\n  - cm.yaml\nsecretGenerator:\n  - name: app\n    options: {disableNameSuffixHash: true}\n    envs: [app.env]\n    files: [token.json, cert.bin]\n",
		"apps/app.env":            enc("app.env", []byte("API_KEY="+guideCanary+"\n"), sopsfile.Rules{}),
		"apps/token.json":         enc("token.json", []byte(`{"token": "`+guideCanary+`"}`), sopsfile.Rules{}),
		"apps/cert.bin":           binEnc,
		"apps/cm.yaml":            enc("cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  endpoint: https://db.internal\n"), sopsfile.Rules{EncryptedRegex: "^data$"}),
	})
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-age"},
		StringData: map[string]string{"age.agekey": id.String()}})).To(Succeed())
	src := gitRepo(ns, "gen", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gen"},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: 10 * time.Minute}, Path: "./apps", Prune: true,
			SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "gen"},
			Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}},
		},
	}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "gen")
		sec := &corev1.Secret{}
		g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "app"}, sec)).To(Succeed())
		g.Expect(string(sec.Data["API_KEY"])).To(Equal(guideCanary))
		g.Expect(string(sec.Data["token.json"])).To(ContainSubstring(`"token": "` + guideCanary + `"`))
		g.Expect(sec.Data["cert.bin"]).To(Equal(bin))
		cm := getCM(g, ns, "settings")
		g.Expect(cm.Data).To(HaveKeyWithValue("endpoint", "https://db.internal"))
		g.Expect(cm.Data).NotTo(HaveKey("sops"))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestEmptyDirectoryReady: a path with no manifests yet (a fresh cluster
// directory) is Ready with an empty inventory, not stuck on a status the
// CRD refuses.
func TestEmptyDirectoryReady(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "empty")
	repo.Commit("init", map[string]string{"clusters/cluster0/README.md": "nothing yet\n"})
	createSource(t, g, ns, repo.URL())
	g.Expect(testClient.Create(testCtx, newKS(ns, "my-secrets", "./clusters/cluster0"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "my-secrets")
		g.Expect(k.Status.Inventory).NotTo(BeNil())
		g.Expect(k.Status.Inventory.Entries).To(BeEmpty())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestForceAnnotation: an object annotated kustomize.toolkit.fluxcd.io/force:
// enabled is recreated when a change hits an immutable field, as with
// spec.force for the whole Kustomization.
func TestForceAnnotation(t *testing.T) {
	g, ns := clusterTest(t)
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\n  namespace: " + ns + "\n  annotations:\n    kustomize.toolkit.fluxcd.io/force: enabled\nimmutable: true\ndata:\n  v: \"" + v + "\"\n"
	}
	repo := newGitRepo(t, "force")
	repo.Commit("v1", map[string]string{"clusters/cluster0/cm.yaml": cm("1")})
	createSource(t, g, ns, repo.URL())
	g.Expect(testClient.Create(testCtx, newKS(ns, "my-secrets", "./clusters/cluster0"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "my-secrets")
		c := getCM(g, ns, "frozen")
		g.Expect(c.Data["v"]).To(Equal("1"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	repo.Commit("v2", map[string]string{"clusters/cluster0/cm.yaml": cm("2")})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	g.Eventually(func(g Gomega) {
		c := getCM(g, ns, "frozen")
		g.Expect(c.Data["v"]).To(Equal("2"))
		ksReady(g, ns, "my-secrets")
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestVaultAllowlistFlag: --sops-vault-allowlist unset leaves each
// decryption Secret's sops.vault-address in charge; "all" is Flux's
// behaviour; an entry with user information is refused, naming the flag.
func TestVaultAllowlistFlag(t *testing.T) {
	for _, c := range []struct {
		arg     string
		any, ok bool
		list    []string
	}{
		{"", false, true, nil},
		{"--sops-vault-allowlist=all", true, true, nil},
		{"--sops-vault-allowlist=none", false, true, []string{}},
		{"--sops-vault-allowlist=https://vault.corp:8200", false, true, []string{"https://vault.corp:8200"}},
		{"--sops-vault-allowlist=http://127.0.0.1:8200@127.0.0.1:9999", false, false, nil},
	} {
		var o Options
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o.BindFlags(fs)
		args := []string{}
		if c.arg != "" {
			args = append(args, c.arg)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		err := o.Complete()
		if (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), "--sops-vault-allowlist")) {
			t.Errorf("%q: %v", c.arg, err)
			continue
		}
		if c.ok && (o.Decryption.VaultAnyAddress != c.any || (o.Decryption.VaultAllowlist == nil) != (c.list == nil) || strings.Join(o.Decryption.VaultAllowlist, ",") != strings.Join(c.list, ",")) {
			t.Errorf("%q: any %v list %#v", c.arg, o.Decryption.VaultAnyAddress, o.Decryption.VaultAllowlist)
		}
	}
}

// TestVaultAddressNotNamed: with no --sops-vault-allowlist, a decryption
// Secret without sops.vault-address sends its token nowhere: the
// Kustomization fails with DecryptionFailed naming the file's Vault
// address and how to allow it; naming it in the Secret applies.
func TestVaultAddressNotNamed(t *testing.T) {
	g, ns := clusterTest(t)
	const token = "hvs.TOKEN-CANARY-77b1"
	vsrv := vaulttest.New(token)
	defer vsrv.Close()
	r, err := vault.NewRecipient(vsrv.URL+"/v1/sops/keys/firstkey", vault.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	repo := newGitRepo(t, "r")
	c1 := repo.Commit("one", map[string]string{"apps/db.yaml": encryptFor(t, r, secretYAML(ns, "db", faultCanary))})
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-hcvault"}, StringData: map[string]string{"sops.vault-token": token}}
	g.Expect(testClient.Create(testCtx, sec)).To(Succeed())
	createSource(t, g, ns, repo.URL())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "sops-hcvault", nil))).To(Succeed())
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring(vsrv.URL))
		g.Expect(c.Message).To(ContainSubstring("sops.vault-address"))
		g.Expect(c.Message).To(ContainSubstring("--sops-vault-allowlist"))
		g.Expect(c.Message).NotTo(ContainSubstring(token))
	})
	g.Expect(vsrv.Decrypts.Load()).To(BeZero(), "the token was sent to an address the Secret does not name")

	g.Expect(testClient.Get(testCtx, client.ObjectKeyFromObject(sec), sec)).To(Succeed())
	sec.StringData = map[string]string{"sops.vault-address": vsrv.URL}
	g.Expect(testClient.Update(testCtx, sec)).To(Succeed())
	appliedAt(g, ns, c1, 90*time.Second)
	g.Expect(secretValue(g, ns, "db")).To(Equal(faultCanary))
}
