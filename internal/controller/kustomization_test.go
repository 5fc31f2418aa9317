package controller

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/inventory"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/keys/pgp"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/keys/vault/vaulttest"
)

const guideCanary = "change-me-CANARY-5e1f"

// basicAuth is the seed guide's `kubectl create secret generic basic-auth
// --dry-run=client -o yaml`.
func basicAuth(ns string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: basic-auth\n  namespace: " + ns + "\ndata:\n  password: " +
		"Y2hhbmdlLW1lLUNBTkFSWS01ZTFm" + "\n  user: YWRtaW4=\n"
}

// TestSeedGuideAge follows the seed guide with age keys: an encrypted
// Secret in Git, a sops-age Secret, a GitRepository and a Kustomization
// with decryption; then an unchanged reconcile, a tampered file and a
// prune.
func TestSeedGuideAge(t *testing.T) {
	start := time.Now()
	g, sys, app := guideTest(t)

	id, _ := age.GenerateX25519Identity()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	repo := newGitRepo(t, "secrets")
	repo.Commit("secrets", map[string]string{
		"clusters/cluster0/basic-auth.yaml": encryptFor(t, r, basicAuth(app)),
		"clusters/cluster0/config.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: " + app + "\ndata:\n  a: b\n",
		"clusters/cluster0/.sops.yaml":      "creation_rules:\n  - path_regex: .*.yaml\n    encrypted_regex: ^(data|stringData)$\n    age: " + id.Recipient().String() + "\n",
		"clusters/cluster0/.sops.pub.asc":   "public key\n",
	})
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: "sops-age"},
		StringData: map[string]string{"age.agekey": id.String()}})).To(Succeed())
	createSource(t, g, sys, repo.URL())
	createKS(g, sys, "sops-age")

	var rv string
	g.Eventually(func(g Gomega) {
		k := ksReady(g, sys, "my-secrets")
		g.Expect(k.Status.LastAppliedRevision).To(HavePrefix("main@sha1:"))
		sec := &corev1.Secret{}
		g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: app, Name: "basic-auth"}, sec)).To(Succeed())
		g.Expect(string(sec.Data["password"])).To(Equal(guideCanary))
		g.Expect(sec.Labels[inventory.NameLabel]).To(Equal("my-secrets"))
		g.Expect(k.Status.Inventory.Entries).To(ContainElement(kustomizev1.ResourceRef{ID: app + "_basic-auth__Secret", Version: "v1"}))
		rv = sec.ResourceVersion
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())

	// An unchanged revision: no unwrap, no write.
	before := testMgr.Kustomizations.Unwraps()
	reconcileHandled(g, sys, "my-secrets", false)
	g.Expect(testMgr.Kustomizations.Unwraps()).To(Equal(before), "a second reconcile of the same revision unwrapped a key")
	sec := &corev1.Secret{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: app, Name: "basic-auth"}, sec)).To(Succeed())
	g.Expect(sec.ResourceVersion).To(Equal(rv), "an unchanged Secret was written again")

	// A tampered file: Ready=False naming the file, the cluster untouched,
	// nothing pruned, no secret in the condition.
	enc := encryptFor(t, r, basicAuth(app))
	repo.Commit("tamper", map[string]string{
		"clusters/cluster0/basic-auth.yaml": strings.Replace(enc, "name: basic-auth", "name: basic-auth2", 1),
		"clusters/cluster0/config.yaml":     "",
	})
	requestReconcile(g, getRepo(g, sys, "my-secrets"))
	g.Eventually(func(g Gomega) {
		k := getKS(g, sys, "my-secrets")
		c := condition(g, k.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring("clusters/cluster0/basic-auth.yaml"))
		g.Expect(c.Message).To(ContainSubstring("MAC"))
		g.Expect(c.Message).NotTo(ContainSubstring(guideCanary))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	cm := &corev1.ConfigMap{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: app, Name: "settings"}, cm)).To(Succeed(), "pruned after a failed decryption")

	// Fixed: applied again, and the ConfigMap removed from Git is pruned.
	repo.Commit("fix", map[string]string{"clusters/cluster0/basic-auth.yaml": enc})
	requestReconcile(g, getRepo(g, sys, "my-secrets"))
	g.Eventually(func(g Gomega) {
		ksReady(g, sys, "my-secrets")
		err := testClient.Get(testCtx, client.ObjectKey{Namespace: app, Name: "settings"}, &corev1.ConfigMap{})
		g.Expect(err).To(HaveOccurred())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// The plaintext never shows in events, conditions or files on disk.
	var events corev1.EventList
	g.Expect(testClient.List(testCtx, &events, client.InNamespace(sys))).To(Succeed())
	for _, e := range events.Items {
		g.Expect(e.Message).NotTo(ContainSubstring(guideCanary))
	}
	for _, c := range getKS(g, sys, "my-secrets").Status.Conditions {
		g.Expect(c.Message).NotTo(ContainSubstring(guideCanary))
	}
	noPlaintextOnDisk(t, start, guideCanary)
}

// TestSeedGuidePGP is the guide's own flow: a gpg key without passphrase,
// exported into the sops-gpg Secret as sops.asc.
func TestSeedGuidePGP(t *testing.T) {
	needCluster(t)
	if _, err := exec.LookPath("gpg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gpg is required in CI")
		}
		t.Skip("gpg is not installed")
	}
	g, sys, app := guideTest(t)
	home := t.TempDir()
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	gpg := func(args ...string) string {
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return string(out)
	}
	gpg("--passphrase", "", "--quick-gen-key", "cluster0.yourdomain.com (flux secrets)", "default", "default", "never")
	var fp string
	for _, l := range strings.Split(gpg("--with-colons", "--list-secret-keys"), "\n") {
		if strings.HasPrefix(l, "fpr:") && fp == "" {
			fp = strings.Split(l, ":")[9]
		}
	}
	r, err := pgp.NewArmoredRecipient([]byte(gpg("--armor", "--export", fp)))
	if err != nil {
		t.Fatal(err)
	}
	guideRepo(t, g, sys, app, r, "sops-gpg", map[string]string{"sops.asc": gpg("--armor", "--export-secret-keys", fp)})
	g.Eventually(func(g Gomega) {
		ksReady(g, sys, "my-secrets")
		g.Expect(secretValue(g, app, "basic-auth")).To(Equal(guideCanary))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestMissingDecryptionSecret reports the missing Secret without applying.
func TestMissingDecryptionSecret(t *testing.T) {
	needCluster(t)
	g := NewWithT(t)
	sys := newNamespace(t)
	id, _ := age.GenerateX25519Identity()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	repo := newGitRepo(t, "secrets")
	repo.Commit("secrets", map[string]string{"clusters/cluster0/basic-auth.yaml": encryptFor(t, r, basicAuth(sys))})
	createSource(t, g, sys, repo.URL())
	createKS(g, sys, "nope")
	g.Eventually(func(g Gomega) {
		c := condition(g, getKS(g, sys, "my-secrets").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring("cannot get decryption Secret"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestSeedGuideVault is the guide's Vault variant: files encrypted with a
// transit key, the token in the sops-hcvault Secret as sops.vault-token,
// the Vault's address as sops.vault-address (lacre sends a token only to
// the addresses its Secret names, or --sops-vault-allowlist).
func TestSeedGuideVault(t *testing.T) {
	g, sys, app := guideTest(t)
	vsrv := vaulttest.New("vault-root-token")
	defer vsrv.Close()
	r, err := vault.NewRecipient(vsrv.URL+"/v1/sops/keys/firstkey", vault.Options{Token: vsrv.Token})
	if err != nil {
		t.Fatal(err)
	}
	guideRepo(t, g, sys, app, r, "sops-hcvault", map[string]string{"sops.vault-token": vsrv.Token, "sops.vault-address": vsrv.URL})
	g.Eventually(func(g Gomega) {
		ksReady(g, sys, "my-secrets")
		g.Expect(secretValue(g, app, "basic-auth")).To(Equal(guideCanary))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	// A second reconcile of the same revision makes no Vault call.
	decrypts := vsrv.Decrypts.Load()
	reconcileHandled(g, sys, "my-secrets", true)
	g.Expect(vsrv.Decrypts.Load()).To(Equal(decrypts), "an unchanged revision called Vault again")
}

// TestPostBuildFromEncryptedSecret substitutes variables taken from a
// Secret that lacre itself decrypted from Git.
func TestPostBuildFromEncryptedSecret(t *testing.T) {
	g, ns := clusterTest(t)
	id, _ := age.GenerateX25519Identity()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	vars := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-vars\n  namespace: " + ns + "\nstringData:\n  region: eu-west-9\n"
	repo := newGitRepo(t, "r")
	repo.Commit("c", map[string]string{
		"vars/vars.yaml": encryptFor(t, r, vars),
		"apps/cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: " + ns + "\ndata:\n  region: ${region}\n  env: ${env:=dev}\n",
	})
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-age"},
		StringData: map[string]string{"age.agekey": id.String()}})).To(Succeed())
	createSource(t, g, ns, repo.URL())
	mk := func(name, path string, post *kustomizev1.PostBuild, deps []meta.DependencyReference) *kustomizev1.Kustomization {
		return &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: 10 * time.Minute}, Path: path, Prune: true, PostBuild: post, DependsOn: deps,
			SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "my-secrets"},
			Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}}}}
	}
	g.Expect(testClient.Create(testCtx, mk("apps", "./apps", &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "cluster-vars"}}},
		[]meta.DependencyReference{{Name: "vars"}}))).To(Succeed())
	g.Expect(testClient.Create(testCtx, mk("vars", "./vars", nil, nil))).To(Succeed())
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "apps")
		cm := getCM(g, ns, "app")
		g.Expect(cm.Data).To(Equal(map[string]string{"region": "eu-west-9", "env": "dev"}))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestHealthCheckFailureAndRecovery: a Deployment that never becomes
// available (no kubelet runs here) fails the health check; once its status
// says available, the Kustomization recovers.
func TestHealthCheckFailureAndRecovery(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "r")
	repo.Commit("c", map[string]string{"apps/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ` + ns + `
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
`})
	createSource(t, g, ns, repo.URL())
	ks := newKS(ns, "apps", "./apps")
	ks.Spec.RetryInterval = &metav1.Duration{Duration: 2 * time.Second}
	ks.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Second}
	ks.Spec.HealthChecks = []meta.NamespacedObjectKindReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		k := getKS(g, ns, "apps")
		c := apimeta.FindStatusCondition(k.Status.Conditions, meta.HealthyCondition)
		g.Expect(c).NotTo(BeNil(), fmt.Sprintf("%+v %+v", k.Status.Conditions, getRepo(g, ns, "my-secrets").Status))
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kustomizev1.HealthCheckFailedReason))
		g.Expect(c.Message).To(ContainSubstring("Deployment/" + ns + "/web"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// Play the kubelet: report the Deployment as rolled out.
	dep := &appsv1.Deployment{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "web"}, dep)).To(Succeed())
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}, {Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}
	g.Expect(testClient.Status().Update(testCtx, dep)).To(Succeed())
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "apps")
		g.Expect(apimeta.IsStatusConditionTrue(k.Status.Conditions, meta.HealthyCondition)).To(BeTrue())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestImpersonationDeniedByRBAC: with serviceAccountName the controller
// applies as that account, so RBAC decides; a RoleBinding lets it through.
func TestImpersonationDeniedByRBAC(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "r")
	repo.Commit("c", map[string]string{"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tenant-cm\n  namespace: " + ns + "\ndata:\n  a: b\n"})
	g.Expect(testClient.Create(testCtx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"}})).To(Succeed())
	createSource(t, g, ns, repo.URL())
	ks := newKS(ns, "tenant", "./apps")
	ks.Spec.RetryInterval = &metav1.Duration{Duration: time.Second}
	ks.Spec.ServiceAccountName = "deployer"
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, getKS(g, ns, "tenant").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("forbidden"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "tenant-cm"}, &corev1.ConfigMap{})).NotTo(Succeed())

	g.Expect(testClient.Create(testCtx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create", "update", "patch", "delete"}}}})).To(Succeed())
	g.Expect(testClient.Create(testCtx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "deployer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: ns}}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		ksReady(g, ns, "tenant")
		g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "tenant-cm"}, &corev1.ConfigMap{})).To(Succeed())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}
