package controller

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/internal/inventory"
	agekeys "github.com/lacre/lacre/keys/age"
)

// tenancyLabel marks the GitRepositories and Kustomizations of the tenancy
// tests: a second manager, started with the lockdown options, watches only
// them, and the suite's default manager ignores them.
const (
	tenancyLabel      = "lacre.test/tenancy"
	tenancyDefaultSA  = "tenant-default"
	tenancySecretPath = "apps/secret.yaml"
)

var (
	tenancyOnce sync.Once
	tenancyMgr  *Manager
	tenancyErr  error
)

// lockdownManager starts (once) the manager with --no-cross-namespace-refs
// and --default-service-account=tenant-default.
func lockdownManager(t *testing.T) *Manager {
	t.Helper()
	needCluster(t)
	tenancyOnce.Do(func() {
		tenancyMgr, tenancyErr = NewManager(Options{
			Config: restConfig(testEnv), Concurrent: 2,
			WatchSelector: tenancyLabel + "=true",
			MetricsAddr:   "0", HealthAddr: "0",
			NoCrossNamespaceRefs:  true,
			DefaultServiceAccount: tenancyDefaultSA,
		})
		if tenancyErr == nil {
			go func() {
				if err := tenancyMgr.Run(testCtx); err != nil {
					fmt.Println("tenancy manager:", err)
				}
			}()
		}
	})
	if tenancyErr != nil {
		t.Fatal(tenancyErr)
	}
	return tenancyMgr
}

// tenancyTest starts a tenancy test: the lockdown manager, a Gomega for t
// and the namespaces of tenants A and B.
func tenancyTest(t *testing.T) (Gomega, string, string) {
	t.Helper()
	lockdownManager(t)
	g := NewWithT(t)
	a, b := tenants(t, g)
	return g, a, b
}

func tenancyLabels() map[string]string { return map[string]string{tenancyLabel: "true"} }

// tenants creates the namespaces of tenants A and B.
func tenants(t *testing.T, g Gomega) (string, string) {
	base := newNamespace(t)
	a, b := base+"-a", base+"-b"
	for _, ns := range []string{a, b} {
		g.Expect(testClient.Create(testCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	return a, b
}

func tenantRepo(g Gomega, ns, name, url string) {
	src := gitRepo(ns, name, url, &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Labels = tenancyLabels()
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	g.Eventually(func(g Gomega) { readyRevision(g, ns, name) }, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

func tenantKS(ns, name string, src kustomizev1.CrossNamespaceSourceReference, secret string) *kustomizev1.Kustomization {
	k := newKS(ns, name, "./apps")
	k.Labels = tenancyLabels()
	k.Spec.RetryInterval = &metav1.Duration{Duration: time.Second}
	k.Spec.SourceRef = src
	if secret != "" {
		k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: secret}}
	}
	return k
}

// grantApply lets the default ServiceAccount of ns apply ConfigMaps and
// Secrets there.
func grantApply(g Gomega, ns string) {
	if err := testClient.Create(testCtx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tenancyDefaultSA}}); err != nil && !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(testClient.Create(testCtx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apply"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"get", "list", "create", "update", "patch", "delete"}}}})).To(Succeed())
	g.Expect(testClient.Create(testCtx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apply"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "apply"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: tenancyDefaultSA, Namespace: ns}}})).To(Succeed())
}

// TestTenancyCrossNamespaceRefsRefused: with --no-cross-namespace-refs,
// tenant A's Kustomization naming tenant B's GitRepository, or depending on
// B's Kustomization, is refused: Ready=False and Stalled, reason
// AccessDenied; nothing from B's repository lands in A.
func TestTenancyCrossNamespaceRefsRefused(t *testing.T) {
	g, a, b := tenancyTest(t)
	repo := newGitRepo(t, "b")
	repo.Commit("b", map[string]string{"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-b\n  namespace: " + a + "\ndata:\n  a: b\n"})
	tenantRepo(g, b, "b-repo", repo.URL())

	g.Expect(testClient.Create(testCtx, tenantKS(a, "steal", kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "b-repo", Namespace: b}, ""))).To(Succeed())
	dep := tenantKS(a, "dep", kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "b-repo"}, "")
	dep.Spec.DependsOn = []meta.DependencyReference{{Name: "anything", Namespace: b}}
	g.Expect(testClient.Create(testCtx, dep)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, a, "steal", meta.AccessDeniedReason)
		g.Expect(c.Message).To(ContainSubstring("GitRepository/" + b + "/b-repo"))
		g.Expect(c.Message).To(ContainSubstring("cross-namespace references are disabled"))
		g.Expect(apimeta.IsStatusConditionTrue(getKS(g, a, "steal").Status.Conditions, meta.StalledCondition)).To(BeTrue())

		c = ksFailed(g, a, "dep", meta.AccessDeniedReason)
		g.Expect(c.Message).To(ContainSubstring("Kustomization '" + b + "/anything'"))
		g.Expect(apimeta.IsStatusConditionTrue(getKS(g, a, "dep").Status.Conditions, meta.StalledCondition)).To(BeTrue())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: a, Name: "from-b"}, &corev1.ConfigMap{})).NotTo(Succeed())
	// Terminal: no retry loop rewrites the status (the retry interval is 1s).
	before := getKS(g, a, "steal").Status.Conditions
	time.Sleep(3 * time.Second)
	g.Expect(getKS(g, a, "steal").Status.Conditions).To(Equal(before))

	// The suite's default manager (no lockdown) never touched the labelled
	// objects: their only status is the locked-down manager's.
	g.Expect(getKS(g, a, "steal").Status.LastAttemptedRevision).To(BeEmpty())
}

// TestTenancyForeignDecryptionSecret: decryption.secretRef is local, so a
// Kustomization in A naming B's Secret looks it up in A, and finds nothing.
func TestTenancyForeignDecryptionSecret(t *testing.T) {
	g, a, b := tenancyTest(t)
	idB, _ := age.GenerateX25519Identity()
	rB, _ := agekeys.ParseRecipient(idB.Recipient().String())
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: b, Name: "b-secret"},
		StringData: map[string]string{"age.agekey": idB.String()}})).To(Succeed())
	repo := newGitRepo(t, "a")
	repo.Commit("a", map[string]string{tenancySecretPath: encryptFor(t, rB, basicAuth(a))})
	tenantRepo(g, a, "a-repo", repo.URL())
	g.Expect(testClient.Create(testCtx, tenantKS(a, "use-b-key", kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "a-repo"}, "b-secret"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, a, "use-b-key", kustomizev1.DecryptionFailedReason)
		g.Expect(c.Message).To(Equal(fmt.Sprintf("cannot get decryption Secret '%s/b-secret': not found", a)))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: a, Name: "basic-auth"}, &corev1.Secret{})).NotTo(Succeed())
}

// TestTenancyCopiedCiphertext: a file encrypted for tenant B's age key,
// copied into tenant A's repository, is not decrypted for A, even right
// after B's reconcile put its data key in the shared key cache: cache
// entries are scoped by the decryption Secret (UID and resourceVersion),
// and A's scope is A's own Secret.
func TestTenancyCopiedCiphertext(t *testing.T) {
	m := lockdownManager(t)
	g := NewWithT(t)
	a, b := tenants(t, g)
	grantApply(g, b)
	idA, _ := age.GenerateX25519Identity()
	idB, _ := age.GenerateX25519Identity()
	rB, _ := agekeys.ParseRecipient(idB.Recipient().String())
	enc := encryptFor(t, rB, basicAuth(b))
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a, Name: "sops-age"},
		StringData: map[string]string{"age.agekey": idA.String()}})).To(Succeed())
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: b, Name: "sops-age"},
		StringData: map[string]string{"age.agekey": idB.String()}})).To(Succeed())

	srv := gittest.New(t, "", "")
	repoB := srv.NewRepo("b", "main")
	repoB.Commit("b", map[string]string{tenancySecretPath: enc})
	tenantRepo(g, b, "repo", repoB.URL())
	// A copies B's file byte for byte: were it decrypted, A's
	// Kustomization would apply B's plaintext.
	repoA := srv.NewRepo("a", "main")
	repoA.Commit("copied", map[string]string{tenancySecretPath: enc})
	tenantRepo(g, a, "repo", repoA.URL())

	before := m.Kustomizations.Unwraps()
	g.Expect(testClient.Create(testCtx, tenantKS(b, "apps", kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}, "sops-age"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		ksReady(g, b, "apps")
		g.Expect(secretValue(g, b, "basic-auth")).To(Equal(guideCanary))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(m.Kustomizations.Unwraps()).To(BeNumerically(">", before), "B's reconcile did not unwrap (and cache) the data key")

	g.Expect(testClient.Create(testCtx, tenantKS(a, "apps", kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}, "sops-age"))).To(Succeed())
	var msg string
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, a, "apps", kustomizev1.DecryptionFailedReason)
		g.Expect(c.Message).To(ContainSubstring(tenancySecretPath))
		g.Expect(c.Message).To(ContainSubstring("could not retrieve the data key"))
		msg = c.Message
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(msg).NotTo(ContainSubstring(b), "A's failure mentions B's namespace")
	g.Expect(msg).NotTo(ContainSubstring(guideCanary))
	t.Logf("tenant A: %s", msg)

	// B's cached entry is still there (B reconciles again without an
	// unwrap), and A still fails on a fresh reconcile.
	unwraps := m.Kustomizations.Unwraps()
	reconcileHandled(g, b, "apps", true)
	g.Expect(m.Kustomizations.Unwraps()).To(Equal(unwraps), "B's data key was not served from the cache")
	requestReconcile(g, getKS(g, a, "apps"))
	g.Eventually(func(g Gomega) {
		k := getKS(g, a, "apps")
		g.Expect(k.Status.LastHandledReconcileAt).To(Equal(k.Annotations[meta.ReconcileRequestAnnotation]))
		ksFailed(g, a, "apps", kustomizev1.DecryptionFailedReason)
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: a, Name: "basic-auth"}, &corev1.Secret{})).NotTo(Succeed())
}

// TestTenancyDefaultServiceAccount: with --default-service-account, a
// Kustomization without serviceAccountName applies as that account in its
// own namespace: denied while the account has no rights, applied once a
// RoleBinding grants them.
func TestTenancyDefaultServiceAccount(t *testing.T) {
	g, a, _ := tenancyTest(t)
	repo := newGitRepo(t, "a")
	repo.Commit("a", map[string]string{"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tenant-cm\n  namespace: " + a + "\ndata:\n  a: b\n"})
	tenantRepo(g, a, "repo", repo.URL())
	g.Expect(testClient.Create(testCtx, tenantKS(a, "apps", kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}, ""))).To(Succeed())
	user := "system:serviceaccount:" + a + ":" + tenancyDefaultSA
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, a, "apps", kustomizev1.ReconciliationFailedReason)
		g.Expect(c.Message).To(ContainSubstring("forbidden"))
		g.Expect(c.Message).To(ContainSubstring(user))
		t.Logf("denied: %s", c.Message)
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: a, Name: "tenant-cm"}, &corev1.ConfigMap{})).NotTo(Succeed())

	grantApply(g, a)
	g.Eventually(func(g Gomega) {
		ksReady(g, a, "apps")
		cm := getCM(g, a, "tenant-cm")
		g.Expect(cm.Labels[inventory.NameLabel]).To(Equal("apps"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestCrossNamespaceRefRule: what --no-cross-namespace-refs refuses, and
// what it lets through (an explicit reference to the own namespace).
func TestCrossNamespaceRefRule(t *testing.T) {
	k := func(srcNS, depNS string) *kustomizev1.Kustomization {
		o := tenantKS("a", "k", kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "r", Namespace: srcNS}, "")
		o.Spec.DependsOn = []meta.DependencyReference{{Name: "d", Namespace: depNS}}
		return o
	}
	on := &KustomizationReconciler{NoCrossNamespaceRefs: true}
	for _, c := range []struct {
		srcNS, depNS string
		refused      bool
	}{{"", "", false}, {"a", "a", false}, {"b", "", true}, {"", "b", true}} {
		if got := on.crossNamespaceRef(k(c.srcNS, c.depNS)) != ""; got != c.refused {
			t.Errorf("source %q dependsOn %q: refused=%v, want %v", c.srcNS, c.depNS, got, c.refused)
		}
		if msg := (&KustomizationReconciler{}).crossNamespaceRef(k(c.srcNS, c.depNS)); msg != "" {
			t.Errorf("without the flag: refused %q", msg)
		}
	}
}
