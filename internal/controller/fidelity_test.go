package controller

// Flux fidelity of the artifact's directories, pruning, deletion and
// health checks (issue 14, items 2 and 3 and the seed-guide bug), on the
// real API server.

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
)

// TestSeedGuideLastSecretPruned is the seed guide's layout: .sops.yaml
// beside the encrypted Secret in clusters/cluster0. The folder removed
// entirely gives Flux's "kustomization path not found" (ArtifactFailed)
// and prunes nothing; the last Secret deleted while .sops.yaml stays
// leaves a folder with no manifests, which builds to nothing and prunes
// the Secret.
func TestSeedGuideLastSecretPruned(t *testing.T) {
	g, sys, app := guideTest(t)
	id, r := newAgeKey(t)
	sopsYAML := "creation_rules:\n  - path_regex: .*.yaml\n    encrypted_regex: ^(data|stringData)$\n    age: " + id.Recipient().String() + "\n"
	repo := newGitRepo(t, "secrets")
	repo.Commit("secrets", map[string]string{
		"README.md":                         "the cluster0 fleet\n",
		"clusters/cluster0/.sops.yaml":      sopsYAML,
		"clusters/cluster0/basic-auth.yaml": encryptFor(t, r, basicAuth(app)),
	})
	putAgeSecret(g, sys, "sops-age", id)
	createSource(t, g, sys, repo.URL())
	createKS(g, sys, "sops-age")
	secretID := kustomizev1.ResourceRef{ID: app + "_basic-auth__Secret", Version: "v1"}
	g.Eventually(func(g Gomega) {
		k := ksReady(g, sys, "my-secrets")
		g.Expect(k.Status.Inventory.Entries).To(ConsistOf(secretID))
		g.Expect(secretValue(g, app, "basic-auth")).To(Equal(guideCanary))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())

	// The folder removed: Flux's error, nothing pruned.
	gone := repo.Commit("remove the folder", map[string]string{"clusters/cluster0/.sops.yaml": "", "clusters/cluster0/basic-auth.yaml": ""})
	requestReconcile(g, getRepo(g, sys, "my-secrets"))
	g.Eventually(func(g Gomega) {
		k := getKS(g, sys, "my-secrets")
		c := condition(g, k.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
		g.Expect(c.Reason).To(Equal(kustomizev1.ArtifactFailedReason), c.Message)
		g.Expect(c.Message).To(Equal("kustomization path not found: stat ./clusters/cluster0: no such file or directory"))
		g.Expect(k.Status.LastAttemptedRevision).To(Equal("main@sha1:" + gone))
		g.Expect(k.Status.Inventory.Entries).To(ConsistOf(secretID))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(secretValue(g, app, "basic-auth")).To(Equal(guideCanary), "pruned although the path is missing")

	// Back with .sops.yaml only: the path exists, builds to nothing and
	// the Secret is pruned.
	only := repo.Commit("only .sops.yaml", map[string]string{"clusters/cluster0/.sops.yaml": sopsYAML})
	requestReconcile(g, getRepo(g, sys, "my-secrets"))
	g.Eventually(func(g Gomega) {
		k := ksReady(g, sys, "my-secrets")
		g.Expect(k.Status.LastAppliedRevision).To(Equal("main@sha1:" + only))
		g.Expect(k.Status.Inventory.Entries).To(BeEmpty())
		g.Expect(exists(g, &corev1.Secret{}, app, "basic-auth")).To(BeFalse(), "the deleted Secret was not pruned")
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

const guardLabel = "lacre.test/guard"

// denyDeletes installs a ValidatingAdmissionPolicy that refuses the
// deletion of ConfigMaps labelled guardLabel in ns, and waits until the
// API server enforces it (a dry-run delete of probe is refused). It
// returns a function that lifts the policy.
func denyDeletes(t *testing.T, g Gomega, ns, probe string) func() {
	t.Helper()
	fail := admissionv1.Fail
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Delete},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression: "!has(oldObject.metadata.labels) || !('" + guardLabel + "' in oldObject.metadata.labels)",
				Message:    "guarded ConfigMaps may not be deleted",
			}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        ns,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns},
			}},
		},
	}
	g.Expect(testClient.Create(testCtx, policy)).To(Succeed())
	g.Expect(testClient.Create(testCtx, binding)).To(Succeed())
	lift := func() {
		_ = client.IgnoreNotFound(testClient.Delete(testCtx, binding))
		_ = client.IgnoreNotFound(testClient.Delete(testCtx, policy))
	}
	t.Cleanup(lift)
	g.Eventually(func(g Gomega) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: probe}}
		err := testClient.Delete(testCtx, cm, client.DryRunAll)
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(ContainSubstring("guarded"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	return lift
}

func guardedCM(ns, name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\n  labels:\n    " + guardLabel + ": \"true\"\ndata:\n  a: b\n"
}

// TestPruneFailureRetried: an object whose deletion the API server refuses
// (a ValidatingAdmissionPolicy denying DELETE) stays in the inventory with
// Ready=False PruneFailed, and is pruned once the deletion is allowed.
// Deleting the Kustomization while the deletion is refused keeps the
// finalizer (the Kustomization stays, with an event); once allowed, the
// objects are pruned and the Kustomization goes.
func TestPruneFailureRetried(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "apps")
	repo.Commit("apps", map[string]string{"apps/keep.yaml": cmYAML(ns, "keep"), "apps/guarded.yaml": guardedCM(ns, "guarded"), "apps/probe.yaml": guardedCM(ns, "probe")})
	createSource(t, g, ns, repo.URL())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "", nil))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(ksReady(g, ns, "apps").Status.Inventory.Entries).To(HaveLen(3))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	lift := denyDeletes(t, g, ns, "probe")

	guardedID := kustomizev1.ResourceRef{ID: ns + "_guarded__ConfigMap", Version: "v1"}
	repo.Commit("drop guarded", map[string]string{"apps/guarded.yaml": ""})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	g.Eventually(func(g Gomega) {
		k := getKS(g, ns, "apps")
		c := condition(g, k.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Reason).To(Equal(kustomizev1.PruneFailedReason), c.Message)
		g.Expect(c.Message).To(ContainSubstring(guardedID.ID))
		g.Expect(k.Status.Inventory.Entries).To(ContainElement(guardedID))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	getCM(g, ns, "guarded")

	lift()
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "apps")
		g.Expect(k.Status.Inventory.Entries).NotTo(ContainElement(guardedID))
		g.Expect(exists(g, &corev1.ConfigMap{}, ns, "guarded")).To(BeFalse())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// Deletion: the finalizer stays while pruning fails.
	denyDeletes(t, g, ns, "probe")
	ks := getKS(g, ns, "apps")
	g.Expect(testClient.Delete(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		var events corev1.EventList
		g.Expect(testClient.List(testCtx, &events, client.InNamespace(ns))).To(Succeed())
		found := false
		for _, e := range events.Items {
			if e.InvolvedObject.Name == "apps" && e.Reason == kustomizev1.PruneFailedReason && strings.Contains(e.Message, "pruning for deleted resource failed") {
				found = true
			}
		}
		g.Expect(found).To(BeTrue(), "no PruneFailed event for the deletion")
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	k := getKS(g, ns, "apps")
	g.Expect(k.DeletionTimestamp).NotTo(BeNil())
	g.Expect(k.Finalizers).To(ContainElement(kustomizev1.KustomizationFinalizer))
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "probe")).To(BeTrue())

	// Allowed again (the policy's binding goes): pruned, and the
	// Kustomization is gone.
	g.Expect(testClient.Delete(testCtx, &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(exists(g, &kustomizev1.Kustomization{}, ns, "apps")).To(BeFalse())
		g.Expect(exists(g, &corev1.ConfigMap{}, ns, "probe")).To(BeFalse())
		g.Expect(exists(g, &corev1.ConfigMap{}, ns, "keep")).To(BeFalse())
	}, 120*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestDeletionSourceGoneSuspendedAndAccountGone: as in Flux, a deleted
// Kustomization prunes from its inventory even when its source is gone; a
// suspended one prunes nothing; one whose service account is gone leaves
// its objects, with an event, and goes.
func TestDeletionSourceGoneSuspendedAndAccountGone(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "apps")
	repo.Commit("apps", map[string]string{"a/cm.yaml": cmYAML(ns, "a"), "b/cm.yaml": cmYAML(ns, "b"), "c/cm.yaml": cmYAML(ns, "c")})
	createSource(t, g, ns, repo.URL())
	grantApply(g, ns)
	for _, name := range []string{"a", "b", "c"} {
		ks := newKS(ns, name, "./"+name)
		if name == "c" {
			ks.Spec.ServiceAccountName = tenancyDefaultSA
		}
		g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		for _, name := range []string{"a", "b", "c"} {
			ksReady(g, ns, name)
			getCM(g, ns, name)
		}
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	b := getKS(g, ns, "b")
	patch := client.MergeFrom(b.DeepCopy())
	b.Spec.Suspend = true
	g.Expect(testClient.Patch(testCtx, b, patch)).To(Succeed())
	g.Expect(testClient.Delete(testCtx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tenancyDefaultSA}})).To(Succeed())
	g.Expect(testClient.Delete(testCtx, getRepo(g, ns, "my-secrets"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(exists(g, &sourcev1.GitRepository{}, ns, "my-secrets")).To(BeFalse())
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	for _, name := range []string{"a", "b", "c"} {
		g.Expect(testClient.Delete(testCtx, getKS(g, ns, name))).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		for _, name := range []string{"a", "b", "c"} {
			g.Expect(exists(g, &kustomizev1.Kustomization{}, ns, name)).To(BeFalse(), name)
		}
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "a")).To(BeFalse(), "source gone: not pruned")
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "b")).To(BeTrue(), "suspended: pruned")
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "c")).To(BeTrue(), "account gone: pruned")
	g.Eventually(func(g Gomega) {
		var events corev1.EventList
		g.Expect(testClient.List(testCtx, &events, client.InNamespace(ns))).To(Succeed())
		found := false
		for _, e := range events.Items {
			found = found || (e.InvolvedObject.Name == "c" && strings.Contains(e.Message, "service account \""+tenancyDefaultSA+"\" not found"))
		}
		g.Expect(found).To(BeTrue(), "no event for the objects left in place")
	}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
}

// selfKS is the Kustomization "self" of ./self as Git holds it: it
// applies itself (interval as given), waits for what it applies and gives
// the health checks ten minutes.
func selfKS(ns, interval string) string {
	return "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: self\n  namespace: " + ns +
		"\nspec:\n  interval: " + interval + "\n  timeout: 10m\n  path: ./self\n  prune: true\n  wait: true\n  sourceRef:\n    kind: GitRepository\n    name: my-secrets\n"
}

// TestHealthSkipsSelfAndFinishedJobs: as in Flux, a Kustomization that
// applies itself with wait: true does not wait for itself (a change to its
// own spec would leave it waiting for its own reconcile, ten minutes
// here); and a Job with ttlSecondsAfterFinished that is gone (the TTL
// controller deleted it) counts as finished, not missing.
func TestHealthSkipsSelfAndFinishedJobs(t *testing.T) {
	g, ns := clusterTest(t)
	job := "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  namespace: " + ns +
		"\nspec:\n  ttlSecondsAfterFinished: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: m\n          image: busybox\n"
	repo := newGitRepo(t, "apps")
	repo.Commit("apps", map[string]string{"self/self.yaml": selfKS(ns, "10m"), "self/cm.yaml": cmYAML(ns, "cm"), "jobs/job.yaml": job})
	createSource(t, g, ns, repo.URL())
	self := newKS(ns, "self", "./self")
	self.Spec.Wait, self.Spec.Timeout = true, &metav1.Duration{Duration: 10 * time.Minute}
	jobs := newKS(ns, "jobs", "./jobs")
	jobs.Spec.Wait, jobs.Spec.Timeout = true, &metav1.Duration{Duration: 10 * time.Minute}
	g.Expect(testClient.Create(testCtx, self)).To(Succeed())
	g.Expect(testClient.Create(testCtx, jobs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "self")
		g.Expect(k.Status.Inventory.Entries).To(ContainElement(kustomizev1.ResourceRef{ID: ns + "_self_kustomize.toolkit.fluxcd.io_Kustomization", Version: "v1"}))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// The Job first: a new revision re-applies it (as Flux does), so the
	// self-managing part, which commits, comes after.
	// The Job: no job controller runs here, so it never finishes; the
	// test deletes it as the TTL controller would after it finished.
	g.Eventually(func(g Gomega) {
		u := &batchv1.Job{}
		g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "migrate"}, u)).To(Succeed())
		c := condition(g, getKS(g, ns, "jobs").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).NotTo(Equal(metav1.ConditionTrue), "Ready before the Job finished")
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(testClient.Delete(testCtx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "migrate"}},
		client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "jobs")
		g.Expect(condition(g, k.Status.Conditions, meta.HealthyCondition).Status).To(Equal(metav1.ConditionTrue))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// Its own spec changed in Git: the apply raises its generation, its
	// observedGeneration lags until the reconcile ends.
	changed := repo.Commit("self: interval 9m", map[string]string{"self/self.yaml": selfKS(ns, "9m")})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "self")
		g.Expect(k.Spec.Interval.Duration).To(Equal(9 * time.Minute))
		g.Expect(k.Status.LastAppliedRevision).To(Equal("main@sha1:" + changed))
		g.Expect(condition(g, k.Status.Conditions, meta.HealthyCondition).Status).To(Equal(metav1.ConditionTrue))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}
