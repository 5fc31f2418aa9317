package controller

// The package's shared test builders, getters and waiters, used by the
// tests of both controllers (the suite's setup is in suite_test.go).

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

func gitRepo(ns, name, url string, ref *sourcev1.GitRepositoryRef) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{
			URL: url, Interval: metav1.Duration{Duration: time.Hour}, Reference: ref,
		},
	}
}

func getRepo(g Gomega, ns, name string) *sourcev1.GitRepository {
	obj := &sourcev1.GitRepository{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, obj)).To(Succeed())
	return obj
}

func readyRevision(g Gomega, ns, name string) string {
	obj := getRepo(g, ns, name)
	c := condition(g, obj.Status.Conditions, meta.ReadyCondition)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	g.Expect(obj.Status.Artifact).NotTo(BeNil())
	g.Expect(obj.Status.ObservedGeneration).To(Equal(obj.Generation))
	return obj.Status.Artifact.Revision
}

func encryptFor(t *testing.T, r keys.Recipient, plain string) string {
	t.Helper()
	out, err := sopsfile.Encrypt(context.Background(), []byte(plain), sopsfile.EncryptOptions{
		InputFormat: formats.YAML, OutputFormat: formats.YAML, Groups: [][]keys.Recipient{{r}},
		Rules: sopsfile.Rules{EncryptedRegex: "^(data|stringData)$"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func getKS(g Gomega, ns, name string) *kustomizev1.Kustomization {
	k := &kustomizev1.Kustomization{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, k)).To(Succeed())
	return k
}

func ksReady(g Gomega, ns, name string) *kustomizev1.Kustomization {
	k := getKS(g, ns, name)
	c := condition(g, k.Status.Conditions, meta.ReadyCondition)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	g.Expect(k.Status.ObservedGeneration).To(Equal(k.Generation))
	return k
}

func createSource(t *testing.T, g Gomega, ns, url string) {
	src := gitRepo(ns, "my-secrets", url, &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Spec.Interval = metav1.Duration{Duration: time.Minute}
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
}

func createKS(g Gomega, ns, secret string) {
	ks := newKS(ns, "my-secrets", "./clusters/cluster0")
	ks.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops"}
	if secret != "" {
		ks.Spec.Decryption.SecretRef = &meta.LocalObjectReference{Name: secret}
	}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
}

func requestReconcile(g Gomega, obj client.Object) {
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[meta.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	obj.SetAnnotations(a)
	g.Expect(testClient.Patch(testCtx, obj, patch)).To(Succeed())
}

// noPlaintextOnDisk walks the artifact store and every file in the
// temporary directory written since start (decompressing gzip), and fails if
// the plaintext canary appears anywhere.
func noPlaintextOnDisk(t *testing.T, start time.Time, canary string) {
	t.Helper()
	scan := func(root string) {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			// etcd stores Secrets as the API server gives them: that is the
			// cluster's storage (encryption at rest is the cluster's setting),
			// not a file this controller writes. The same holds for the
			// control planes of other test processes running at the same
			// time (their etcd holds their own canary Secrets). Nor do the
			// go-build directories of other `go test` runs, whose compiled
			// test packages hold the canary as a constant.
			if d.IsDir() {
				top := filepath.Dir(p) == filepath.Clean(os.TempDir())
				if p == testEnv.Dir() || (top && (strings.HasPrefix(d.Name(), "lacre-cluster-") || strings.HasPrefix(d.Name(), "go-build"))) {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := d.Info()
			if err != nil || info.ModTime().Before(start) || !info.Mode().IsRegular() || info.Size() > 64<<20 {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
				if plain, err := io.ReadAll(io.LimitReader(zr, 256<<20)); err == nil {
					data = plain
				}
			}
			if bytes.Contains(data, []byte(canary)) {
				t.Errorf("the plaintext canary is on disk in %s", p)
			}
			return nil
		})
	}
	scan(testMgr.Storage.Root())
	scan(os.TempDir())
}

func newAgeKey(t *testing.T) (*age.X25519Identity, keys.Recipient) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := agekeys.ParseRecipient(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	return id, r
}

func secretYAML(ns, name, password string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\nstringData:\n  password: " + password + "\n"
}

func cmYAML(ns, name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\ndata:\n  a: b\n"
}

func putAgeSecret(g Gomega, ns, name string, id *age.X25519Identity) {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	err := testClient.Get(testCtx, client.ObjectKeyFromObject(sec), sec)
	sec.StringData = map[string]string{"age.agekey": id.String()}
	sec.Data = nil
	if err == nil {
		g.Expect(testClient.Update(testCtx, sec)).To(Succeed())
		return
	}
	g.Expect(testClient.Create(testCtx, sec)).To(Succeed())
}

// faultKS is a pruning Kustomization of ./apps that retries every second.
func faultKS(ns, secret string, lbl map[string]string) *kustomizev1.Kustomization {
	ks := newKS(ns, "apps", "./apps")
	ks.Labels = lbl
	ks.Spec.RetryInterval = &metav1.Duration{Duration: time.Second}
	if secret != "" {
		ks.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: secret}}
	}
	return ks
}

// appliedAt waits until the Kustomization is Ready at main@sha1:commit.
func appliedAt(g Gomega, ns, commit string, timeout time.Duration) {
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "apps")
		g.Expect(k.Status.LastAppliedRevision).To(Equal("main@sha1:" + commit))
	}, timeout, 250*time.Millisecond).Should(Succeed())
}

// ksFailing waits for Ready=False and returns the condition.
func ksFailing(g Gomega, ns string, check func(g Gomega, c *metav1.Condition)) {
	g.Eventually(func(g Gomega) {
		c := condition(g, getKS(g, ns, "apps").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
		check(g, c)
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
}

func exists(g Gomega, obj client.Object, ns, name string) bool {
	err := testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	return err == nil
}

func secretValue(g Gomega, ns, name string) string {
	sec := &corev1.Secret{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, sec)).To(Succeed())
	return string(sec.Data["password"])
}

func countCMs(ns, prefix string) (int, error) {
	var list corev1.ConfigMapList
	if err := testClient.List(testCtx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	n := 0
	for _, cm := range list.Items {
		if strings.HasPrefix(cm.Name, prefix+"-") {
			n++
		}
	}
	return n, nil
}

func ksFailed(g Gomega, ns, name, reason string) *metav1.Condition {
	k := getKS(g, ns, name)
	c := condition(g, k.Status.Conditions, meta.ReadyCondition)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
	g.Expect(c.Reason).To(Equal(reason), c.Message)
	// Flux records status.observedGeneration on success only: the
	// condition tells which generation failed.
	g.Expect(c.ObservedGeneration).To(Equal(k.Generation))
	return c
}

// condition returns the condition of type typ; the assertion fails when
// there is none.
func condition(g Gomega, conds []metav1.Condition, typ string) *metav1.Condition {
	c := apimeta.FindStatusCondition(conds, typ)
	g.Expect(c).NotTo(BeNil(), "no "+typ+" condition")
	return c
}

// newKS is a pruning Kustomization of path in the GitRepository
// my-secrets, reconciled every ten minutes.
func newKS(ns, name, path string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: 10 * time.Minute},
			Path:      path,
			Prune:     true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "my-secrets"},
		},
	}
}

// getCM gets a ConfigMap; the assertion fails when there is none.
func getCM(g Gomega, ns, name string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, cm)).To(Succeed())
	return cm
}

// clusterTest starts most tests: the local control plane (or a skip), a
// Gomega for t and a new namespace.
func clusterTest(t *testing.T) (Gomega, string) {
	t.Helper()
	needCluster(t)
	return NewWithT(t), newNamespace(t)
}

// newGitRepo serves a new repository name (branch main) for the test.
func newGitRepo(t *testing.T, name string) *gittest.Repo {
	t.Helper()
	return gittest.New(t, "", "").NewRepo(name, "main")
}

// reconcileHandled requests a reconcile of the Kustomization and waits
// until it has handled the request (and, with ready, is Ready).
func reconcileHandled(g Gomega, ns, name string, ready bool) {
	requestReconcile(g, getKS(g, ns, name))
	g.Eventually(func(g Gomega) {
		k := getKS(g, ns, name)
		g.Expect(k.Status.LastHandledReconcileAt).To(Equal(k.Annotations[meta.ReconcileRequestAnnotation]))
		if ready {
			ksReady(g, ns, name)
		}
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
}

// guideTest starts a seed-guide test: a Gomega for t, the namespace of the
// sources and Kustomizations (sys) and that of the applied objects (app).
func guideTest(t *testing.T) (g Gomega, sys, app string) {
	t.Helper()
	needCluster(t)
	g = NewWithT(t)
	sys = newNamespace(t)
	app = sys + "-app"
	g.Expect(testClient.Create(testCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: app}})).To(Succeed())
	return g, sys, app
}

// guideRepo is the seed guide's setup: the basic-auth Secret for app,
// encrypted for r, in Git; the decryption Secret secret holding data; the
// GitRepository and the Kustomization my-secrets in sys.
func guideRepo(t *testing.T, g Gomega, sys, app string, r keys.Recipient, secret string, data map[string]string) {
	t.Helper()
	repo := newGitRepo(t, "secrets")
	repo.Commit("secrets", map[string]string{"clusters/cluster0/basic-auth.yaml": encryptFor(t, r, basicAuth(app))})
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: secret},
		StringData: data})).To(Succeed())
	createSource(t, g, sys, repo.URL())
	createKS(g, sys, secret)
}
