package controller

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/source/bucket/buckettest"
	agekeys "github.com/lacre/lacre/keys/age"
)

const bucketAK, bucketSK = "AKIALACREBUCKET", "bucket-secret-key-canary"

func newBucket(ns, name, endpoint, secret string) *sourcev1.Bucket {
	b := &sourcev1.Bucket{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.BucketSpec{
			BucketName: "manifests", Endpoint: endpoint, Insecure: true,
			Interval: metav1.Duration{Duration: time.Second},
		},
	}
	if secret != "" {
		b.Spec.SecretRef = &meta.LocalObjectReference{Name: secret}
	}
	return b
}

func getBucket(g Gomega, ns, name string) *sourcev1.Bucket {
	obj := &sourcev1.Bucket{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, obj)).To(Succeed())
	return obj
}

// bucketRevision is Flux's Bucket revision of objects (key → content) as
// S3 serves them: the ETag of a single-part object is its MD5.
func bucketRevision(objects map[string]string) string {
	keys := make([]string, 0, len(objects))
	for k := range objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		sum := md5.Sum([]byte(objects[k]))
		fmt.Fprintf(h, "%s %s\n", k, hex.EncodeToString(sum[:]))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func s3Secret(g Gomega, ns, name, ak, sk string) {
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: map[string]string{"accesskey": ak, "secretkey": sk}})).To(Succeed())
}

// TestBucketFetchIgnoreAndFollow: a Bucket on a real S3-protocol server
// with signed requests becomes Ready with Flux's revision; the artifact
// holds the objects the bucket's .sourceignore and spec.ignore leave (and
// the .sourceignore, as in Flux); a new object is a new revision,
// followed at the interval.
func TestBucketFetchIgnoreAndFollow(t *testing.T) {
	g, ns := clusterTest(t)
	srv := buckettest.New(t, buckettest.Options{AccessKey: bucketAK, SecretKey: bucketSK})
	srv.CreateBucket(t, "manifests")
	indexed := map[string]string{"deploy/app.yaml": "kind: ConfigMap\n", "deploy/.sops.yaml": "creation_rules: []\n"}
	for k, v := range indexed {
		srv.Put(t, "manifests", k, []byte(v))
	}
	srv.Put(t, "manifests", "deploy/notes.md", []byte("notes\n"))
	srv.Put(t, "manifests", "deploy/skip.yaml", []byte("skip: me\n"))
	srv.Put(t, "manifests", ".sourceignore", []byte("*.md\n"))
	s3Secret(g, ns, "s3", bucketAK, bucketSK)
	b := newBucket(ns, "b", srv.Endpoint, "s3")
	ignore := "deploy/skip.yaml\n"
	b.Spec.Ignore = &ignore
	g.Expect(testClient.Create(testCtx, b)).To(Succeed())

	var art *meta.Artifact
	g.Eventually(func(g Gomega) {
		obj := getBucket(g, ns, "b")
		c := condition(g, obj.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(obj.Status.Artifact).NotTo(BeNil())
		g.Expect(obj.Status.Artifact.Revision).To(Equal(bucketRevision(indexed)))
		g.Expect(c.Message).To(Equal("stored artifact: revision '" + bucketRevision(indexed) + "'"))
		g.Expect(apimeta.IsStatusConditionTrue(obj.Status.Conditions, sourcev1.ArtifactInStorageCondition)).To(BeTrue())
		g.Expect(obj.Status.ObservedIgnore).To(Equal(&ignore))
		g.Expect(obj.Status.URL).To(Equal(obj.Status.Artifact.URL))
		art = obj.Status.Artifact
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	files, err := (&artifact.Fetcher{}).Fetch(testCtx, art.URL, art.Digest)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).To(HaveKey("deploy/app.yaml"))
	g.Expect(files).To(HaveKey("deploy/.sops.yaml")) // no default exclusions, as Flux's Bucket
	g.Expect(files).To(HaveKey(".sourceignore"))
	g.Expect(files).NotTo(HaveKey("deploy/notes.md"))
	g.Expect(files).NotTo(HaveKey("deploy/skip.yaml"))
	g.Expect(art.Path).To(HavePrefix("bucket/" + ns + "/b/"))

	// A new object: a new revision, fetched at the interval.
	indexed["deploy/new.yaml"] = "kind: ConfigMap # new\n"
	srv.Put(t, "manifests", "deploy/new.yaml", []byte(indexed["deploy/new.yaml"]))
	g.Eventually(func(g Gomega) {
		obj := getBucket(g, ns, "b")
		g.Expect(obj.Status.Artifact.Revision).To(Equal(bucketRevision(indexed)))
		files, err := (&artifact.Fetcher{}).Fetch(testCtx, obj.Status.Artifact.URL, obj.Status.Artifact.Digest)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(files).To(HaveKey("deploy/new.yaml"))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}

// TestBucketFailures: a wrong secret key (S3 refuses the signature), a
// Secret without Flux's keys, and an unsupported provider each give a
// clear condition, never quoting the secret.
func TestBucketFailures(t *testing.T) {
	g, ns := clusterTest(t)
	srv := buckettest.New(t, buckettest.Options{AccessKey: bucketAK, SecretKey: bucketSK})
	srv.CreateBucket(t, "manifests")
	srv.Put(t, "manifests", "a.yaml", []byte("a: 1\n"))
	s3Secret(g, ns, "wrong", bucketAK, "wrong-secret-key-canary")
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keyless"},
		StringData: map[string]string{"username": "u", "password": "p"}})).To(Succeed())
	g.Expect(testClient.Create(testCtx, newBucket(ns, "wrong", srv.Endpoint, "wrong"))).To(Succeed())
	g.Expect(testClient.Create(testCtx, newBucket(ns, "keyless", srv.Endpoint, "keyless"))).To(Succeed())
	gcp := newBucket(ns, "gcp", srv.Endpoint, "")
	gcp.Spec.Provider = sourcev1.BucketProviderGoogle
	g.Expect(testClient.Create(testCtx, gcp)).To(Succeed())

	failed := func(name, reason string, stalled bool, says string) {
		g.Eventually(func(g Gomega) {
			obj := getBucket(g, ns, name)
			c := condition(g, obj.Status.Conditions, meta.ReadyCondition)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(reason))
			g.Expect(c.Message).To(ContainSubstring(says))
			g.Expect(c.Message).NotTo(ContainSubstring("canary"))
			f := condition(g, obj.Status.Conditions, sourcev1.FetchFailedCondition)
			g.Expect(f.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(apimeta.IsStatusConditionTrue(obj.Status.Conditions, meta.StalledCondition)).To(Equal(stalled))
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), name)
	}
	failed("wrong", sourcev1.BucketOperationFailedReason, false, "failed to confirm existence of 'manifests' bucket: The request signature we calculated does not match")
	failed("keyless", sourcev1.AuthenticationFailedReason, false, "'keyless' secret data: required fields 'accesskey' and 'secretkey'")
	failed("gcp", UnsupportedFieldReason, true, `spec.provider "gcp" is not supported`)
}

// TestBucketTooLarge: objects over the controller's limits are refused
// from the listing, before any download, with ArtifactTooLarge.
func TestBucketTooLarge(t *testing.T) {
	g, ns := clusterTest(t)
	srv := buckettest.New(t, buckettest.Options{})
	srv.CreateBucket(t, "manifests")
	srv.Put(t, "manifests", "a.yaml", []byte("a: 1\n"))
	srv.Put(t, "manifests", "big.yaml", make([]byte, 4096))
	b := newBucket(ns, "big", srv.Endpoint, "")
	b.Labels = map[string]string{isolatedLabel: "true"} // reconciled here only
	g.Expect(testClient.Create(testCtx, b)).To(Succeed())
	store, err := artifact.NewStore(t.TempDir(), "http://127.0.0.1")
	g.Expect(err).NotTo(HaveOccurred())
	r := &BucketReconciler{Client: testClient, Storage: store, Limits: artifact.Limits{MaxTotalSize: 1024}, Budget: artifact.NewBudget(4096)}
	g.Eventually(func(g Gomega) {
		_, err := r.Reconcile(testCtx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "big"}})
		g.Expect(err).NotTo(HaveOccurred())
		obj := getBucket(g, ns, "big")
		c := condition(g, obj.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Reason).To(Equal(sourcev1.ArtifactTooLargeReason))
		g.Expect(c.Message).To(ContainSubstring("exceed 1024 bytes"))
		g.Expect(obj.Status.Artifact).To(BeNil())
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	g.Expect(r.Budget.Peak()).To(BeZero(), "bytes were charged for a refused bucket")
}

// TestSeedGuideBucket: the seed guide's flow through a Bucket: the
// age-encrypted Secret is an object in the bucket, a Kustomization with
// SOPS decryption names the Bucket, and the Secret is decrypted in the
// cluster; a changed object in the bucket is applied.
func TestSeedGuideBucket(t *testing.T) {
	start := time.Now()
	g, sys, app := guideTest(t)
	id, _ := age.GenerateX25519Identity()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	srv := buckettest.New(t, buckettest.Options{AccessKey: bucketAK, SecretKey: bucketSK})
	srv.CreateBucket(t, "manifests")
	srv.Put(t, "manifests", "clusters/cluster0/basic-auth.yaml", []byte(encryptFor(t, r, basicAuth(app))))
	s3Secret(g, sys, "s3", bucketAK, bucketSK)
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sys, Name: "sops-age"},
		StringData: map[string]string{"age.agekey": id.String()}})).To(Succeed())
	g.Expect(testClient.Create(testCtx, newBucket(sys, "my-secrets", srv.Endpoint, "s3"))).To(Succeed())
	ks := newKS(sys, "my-secrets", "./clusters/cluster0")
	ks.Spec.SourceRef.Kind = sourcev1.BucketKind
	ks.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())

	g.Eventually(func(g Gomega) {
		k := ksReady(g, sys, "my-secrets")
		g.Expect(k.Status.LastAppliedRevision).To(Equal(getBucket(g, sys, "my-secrets").Status.Artifact.Revision))
		g.Expect(k.Status.LastAppliedRevision).To(HavePrefix("sha256:"))
		g.Expect(secretValue(g, app, "basic-auth")).To(Equal(guideCanary))
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())

	// A new object in the bucket is applied.
	srv.Put(t, "manifests", "clusters/cluster0/config.yaml", []byte(cmYAML(app, "settings")))
	g.Eventually(func(g Gomega) {
		getCM(g, app, "settings")
	}, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	noPlaintextOnDisk(t, start, guideCanary)
}

// TestBucketMTLSAndProxy: certSecretRef's CA and client certificate reach
// an HTTPS endpoint requiring one; proxySecretRef's proxy (the
// GitRepository's rules) carries plain and tunnelled requests.
func TestBucketMTLSAndProxy(t *testing.T) {
	g, ns := clusterTest(t)
	srv := buckettest.New(t, buckettest.Options{AccessKey: bucketAK, SecretKey: bucketSK})
	srv.CreateBucket(t, "manifests")
	srv.Put(t, "manifests", "a.yaml", []byte("a: 1\n"))
	pool, certPEM, keyPEM := clientCA(t)
	front, caPEM := tlsFront(t, "http://"+srv.Endpoint, pool)
	httpsEndpoint := strings.TrimPrefix(front.URL, "https://")
	proxy := &countingProxy{}
	proxyURL := proxy.start(t, "proxyuser", "proxy-pass")
	s3Secret(g, ns, "s3", bucketAK, bucketSK)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mtls"}, Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": caPEM}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca-only"}, Data: map[string][]byte{"ca.crt": caPEM}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "proxy"}, StringData: map[string]string{"address": proxyURL, "username": "proxyuser", "password": "proxy-pass"}},
	} {
		g.Expect(testClient.Create(testCtx, s)).To(Succeed())
	}
	create := func(name, endpoint, cert, proxySecret string) {
		b := newBucket(ns, name, endpoint, "s3")
		b.Spec.Insecure = cert == ""
		if cert != "" {
			b.Spec.CertSecretRef = &meta.LocalObjectReference{Name: cert}
		}
		if proxySecret != "" {
			b.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: proxySecret}
		}
		g.Expect(testClient.Create(testCtx, b)).To(Succeed())
	}
	ready := func(name string) {
		g.Eventually(func(g Gomega) {
			c := condition(g, getBucket(g, ns, name).Status.Conditions, meta.ReadyCondition)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), name)
	}
	create("mtls", httpsEndpoint, "mtls", "")
	ready("mtls")
	create("no-client-cert", httpsEndpoint, "ca-only", "")
	g.Eventually(func(g Gomega) {
		c := condition(g, getBucket(g, ns, "no-client-cert").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Reason).To(Equal(sourcev1.BucketOperationFailedReason))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	create("proxied-http", srv.Endpoint, "", "proxy")
	ready("proxied-http")
	g.Expect(proxy.plain.Load()).To(BeNumerically(">", 0))
	create("proxied-https", httpsEndpoint, "mtls", "proxy")
	ready("proxied-https")
	g.Expect(proxy.connects.Load()).To(BeNumerically(">", 0))
}
