package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/ociartifact"
	"github.com/lacre/lacre/internal/source/oci"
)

// testRegistry is go-containerregistry's registry (the distribution
// protocol) on loopback, optionally behind basic auth and TLS, which can
// serve one blob tampered with.
type testRegistry struct {
	srv        *httptest.Server
	user, pass string
	// tamper, when set, is a blob digest whose bytes are served changed.
	tamper atomic.Value
}

func newTestRegistry(t *testing.T, user, pass string, useTLS bool) *testRegistry {
	t.Helper()
	r := &testRegistry{user: user, pass: pass}
	r.tamper.Store("")
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); user != "" && (!ok || u != user || p != pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="lacre-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if d := r.tamper.Load().(string); d != "" && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/blobs/"+d) {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		reg.ServeHTTP(w, req)
	})
	if useTLS {
		r.srv = httptest.NewTLSServer(h)
	} else {
		r.srv = httptest.NewServer(h)
	}
	t.Cleanup(r.srv.Close)
	return r
}

func (r *testRegistry) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(r.srv.URL, "https://"), "http://")
}

func (r *testRegistry) remoteOpts() []remote.Option {
	opts := []remote.Option{remote.WithTransport(r.srv.Client().Transport)}
	if r.user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass}))
	}
	return opts
}

// caPEM is the PEM of the TLS server's certificate (its own CA).
func (r *testRegistry) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
}

// push pushes files as `lacre push artifact` does (internal/ociartifact:
// Flux's media types and annotations, one tar.gz layer) to repo:tag; it
// returns the manifest and layer digests.
func (r *testRegistry) push(t *testing.T, repo, tag string, files map[string]string) (manifest, layer string) {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, c := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(c), Mode: 0o600}
	}
	data, err := ociartifact.BuildLayer(fsys, nil, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociartifact.Image(data, ociartifact.Metadata{Source: "https://example.invalid/repo", Revision: "main@sha1:0123"})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(r.host() + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	o := ociartifact.Options{Transport: r.srv.Client().Transport}
	if r.user != "" {
		o.Auth = &authn.Basic{Username: r.user, Password: r.pass}
	}
	if _, err := ociartifact.New(o).Push(testCtx, ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	return d.String(), ld.String()
}

// sign signs digest in repo with key as cosign does (a simple-signing
// payload in the sha256-<hex>.sig image).
func (r *testRegistry) sign(t *testing.T, repo, digest string, key *ecdsa.PrivateKey) {
	t.Helper()
	var p oci.SimpleSigning
	p.Critical.Identity.DockerReference = r.host() + "/" + repo
	p.Critical.Image.DockerManifestDigest = digest
	p.Critical.Type = "cosign container image signature"
	payload, _ := json.Marshal(p)
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:       static.NewLayer(payload, oci.SimpleSigningMediaType),
		Annotations: map[string]string{oci.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		t.Fatal(err)
	}
	repoName, _ := name.NewRepository(r.host() + "/" + repo)
	if err := remote.Write(oci.SignatureTag(repoName, digest), img, r.remoteOpts()...); err != nil {
		t.Fatal(err)
	}
}

func ociRepo(ns, name, url string, ref *sourcev1.OCIRepositoryRef) *sourcev1.OCIRepository {
	return &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       sourcev1.OCIRepositorySpec{URL: url, Reference: ref, Interval: metav1.Duration{Duration: time.Hour}},
	}
}

func getOCIRepo(g Gomega, ns, name string) *sourcev1.OCIRepository {
	o := &sourcev1.OCIRepository{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, o)).To(Succeed())
	return o
}

// ociReady waits until the OCIRepository is Ready at its generation and
// returns its artifact's revision.
func ociReady(g Gomega, ns, name string) string {
	o := getOCIRepo(g, ns, name)
	c := condition(g, o.Status.Conditions, meta.ReadyCondition)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	g.Expect(o.Status.ObservedGeneration).To(Equal(o.Generation))
	g.Expect(o.Status.Artifact).NotTo(BeNil())
	return o.Status.Artifact.Revision
}

func ociFailed(g Gomega, ns, name, reason string) *metav1.Condition {
	o := getOCIRepo(g, ns, name)
	c := condition(g, o.Status.Conditions, meta.ReadyCondition)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
	g.Expect(c.Reason).To(Equal(reason), c.Message)
	g.Expect(c.ObservedGeneration).To(Equal(o.Generation))
	return c
}

// TestOCIRepositorySeedGuide is the seed guide's flow from an OCI
// registry behind basic auth and TLS: the folder with an age-encrypted
// Secret pushed as an artifact, an OCIRepository (dockerconfigjson
// secretRef, certSecretRef with the CA) and a Kustomization decrypting with
// SOPS; the Secret is decrypted in the cluster, and a new push to the tag
// is followed. Revisions are Flux's tag@sha256:<manifest digest>.
func TestOCIRepositorySeedGuide(t *testing.T) {
	g, ns := clusterTest(t)
	reg := newTestRegistry(t, "robot", "s3cr3t-CANARY-reg", true)
	id, r := newAgeKey(t)
	putAgeSecret(g, ns, "sops-age", id)
	d1, _ := reg.push(t, "apps", "latest", map[string]string{"clusters/cluster0/basic-auth.yaml": encryptFor(t, r, basicAuth(ns))})
	auth := `{"auths":{"` + reg.host() + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("robot:s3cr3t-CANARY-reg")) + `"}}}`
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{".dockerconfigjson": []byte(auth)}})).To(Succeed())
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regca"},
		Data: map[string][]byte{"ca.crt": reg.caPEM()}})).To(Succeed())
	src := ociRepo(ns, "my-secrets", "oci://"+reg.host()+"/apps", nil)
	src.Spec.SecretRef = &meta.LocalObjectReference{Name: "regcred"}
	src.Spec.CertSecretRef = &meta.LocalObjectReference{Name: "regca"}
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	ks := newKS(ns, "my-secrets", "./clusters/cluster0")
	ks.Spec.SourceRef = kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: "my-secrets"}
	ks.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(ociReady(g, ns, "my-secrets")).To(Equal("latest@" + d1))
		g.Expect(ksReady(g, ns, "my-secrets").Status.LastAppliedRevision).To(Equal("latest@" + d1))
		g.Expect(secretValue(g, ns, "basic-auth")).To(Equal("change-me-CANARY-5e1f"))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
	o := getOCIRepo(g, ns, "my-secrets")
	g.Expect(o.Status.Artifact.Metadata).To(HaveKeyWithValue("org.opencontainers.image.revision", "main@sha1:0123"))
	g.Expect(o.Status.ObservedLayerSelector).To(BeNil())

	// A new push to the tag: followed on the next reconcile.
	d2, _ := reg.push(t, "apps", "latest", map[string]string{"clusters/cluster0/cm.yaml": cmYAML(ns, "second")})
	requestReconcile(g, getOCIRepo(g, ns, "my-secrets"))
	g.Eventually(func(g Gomega) {
		g.Expect(ociReady(g, ns, "my-secrets")).To(Equal("latest@" + d2))
		g.Expect(ksReady(g, ns, "my-secrets").Status.LastAppliedRevision).To(Equal("latest@" + d2))
		getCM(g, ns, "second")
		g.Expect(exists(g, &corev1.Secret{}, ns, "basic-auth")).To(BeFalse()) // pruned
	}, time.Minute, 100*time.Millisecond).Should(Succeed())

	// Wrong credentials: AuthenticationFailed is not what the registry
	// says, the pull fails; the password never shows.
	bad := ociRepo(ns, "no-auth", "oci://"+reg.host()+"/apps", nil)
	bad.Spec.CertSecretRef = &meta.LocalObjectReference{Name: "regca"}
	g.Expect(testClient.Create(testCtx, bad)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ociFailed(g, ns, "no-auth", sourcev1.OCIPullFailedReason)
		g.Expect(c.Message).NotTo(ContainSubstring("CANARY"))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
}

// TestOCIRepositoryTamperedLayer: a layer whose bytes do not match the
// manifest's digest is refused (FetchFailed, OCIArtifactPullFailed) and no
// new artifact is stored; the previous one stays.
func TestOCIRepositoryTamperedLayer(t *testing.T) {
	g, ns := clusterTest(t)
	reg := newTestRegistry(t, "", "", false)
	d1, _ := reg.push(t, "apps", "v1", map[string]string{"cm.yaml": cmYAML(ns, "one")})
	src := ociRepo(ns, "tamper", "oci://"+reg.host()+"/apps", &sourcev1.OCIRepositoryRef{Tag: "v1"})
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(ociReady(g, ns, "tamper")).To(Equal("v1@" + d1)) }, time.Minute, 100*time.Millisecond).Should(Succeed())
	before := getOCIRepo(g, ns, "tamper").Status.Artifact

	_, layer := reg.push(t, "apps", "v1", map[string]string{"cm.yaml": cmYAML(ns, "two")})
	reg.tamper.Store(layer)
	requestReconcile(g, getOCIRepo(g, ns, "tamper"))
	g.Eventually(func(g Gomega) {
		c := ociFailed(g, ns, "tamper", sourcev1.OCIPullFailedReason)
		g.Expect(c.Message).To(ContainSubstring("digest"))
		o := getOCIRepo(g, ns, "tamper")
		g.Expect(condition(g, o.Status.Conditions, sourcev1.FetchFailedCondition).Status).To(Equal(metav1.ConditionTrue))
		g.Expect(o.Status.Artifact.Digest).To(Equal(before.Digest))
		g.Expect(o.Status.Artifact.Revision).To(Equal(before.Revision))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
}

// TestOCIRepositoryRefs: semver picks the newest matching tag, its filter
// narrows the tags, a digest gives a bare sha256: revision, and an invalid
// range is terminal.
func TestOCIRepositoryRefs(t *testing.T) {
	g, ns := clusterTest(t)
	reg := newTestRegistry(t, "", "", false)
	digests := map[string]string{}
	for _, tag := range []string{"1.0.0", "1.2.0", "2.0.0", "1.3.0-rc.1", "latest"} {
		digests[tag], _ = reg.push(t, "apps", tag, map[string]string{"cm.yaml": cmYAML(ns, "v"+strings.ReplaceAll(tag, ".", "-"))})
	}
	url := "oci://" + reg.host() + "/apps"
	for _, o := range []*sourcev1.OCIRepository{
		ociRepo(ns, "range", url, &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0 <2.0.0"}),
		ociRepo(ns, "filtered", url, &sourcev1.OCIRepositoryRef{SemVer: ">=1.0.0-0 <2.0.0", SemverFilter: ".*-rc.*"}),
		ociRepo(ns, "digest", url, &sourcev1.OCIRepositoryRef{Digest: digests["1.0.0"], Tag: "2.0.0"}),
		ociRepo(ns, "bad-range", url, &sourcev1.OCIRepositoryRef{SemVer: "not a range"}),
	} {
		g.Expect(testClient.Create(testCtx, o)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		g.Expect(ociReady(g, ns, "range")).To(Equal("1.2.0@" + digests["1.2.0"]))
		g.Expect(ociReady(g, ns, "filtered")).To(Equal("1.3.0-rc.1@" + digests["1.3.0-rc.1"]))
		g.Expect(ociReady(g, ns, "digest")).To(Equal(digests["1.0.0"]))
		ociFailed(g, ns, "bad-range", sourcev1.OCIPullFailedReason)
		o := getOCIRepo(g, ns, "bad-range")
		g.Expect(condition(g, o.Status.Conditions, meta.StalledCondition).Status).To(Equal(metav1.ConditionTrue))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())

	// A newer tag in range is picked on the next reconcile.
	digests["1.4.0"], _ = reg.push(t, "apps", "1.4.0", map[string]string{"cm.yaml": cmYAML(ns, "v140")})
	requestReconcile(g, getOCIRepo(g, ns, "range"))
	g.Eventually(func(g Gomega) {
		g.Expect(ociReady(g, ns, "range")).To(Equal("1.4.0@" + digests["1.4.0"]))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
}

// TestOCIRepositoryCosign: an artifact signed with a cosign key verifies
// (SourceVerified=True); an unsigned one, or one signed by another key, is
// refused (SourceVerified=False, VerificationError, no artifact); keyless
// verification, cloud providers and notation are refused by name.
func TestOCIRepositoryCosign(t *testing.T) {
	g, ns := clusterTest(t)
	reg := newTestRegistry(t, "", "", false)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cosign-pub"},
		Data: map[string][]byte{"cosign.pub": pub}})).To(Succeed())
	signed, _ := reg.push(t, "signed", "v1", map[string]string{"cm.yaml": cmYAML(ns, "signed")})
	reg.sign(t, "signed", signed, key)
	reg.push(t, "unsigned", "v1", map[string]string{"cm.yaml": cmYAML(ns, "unsigned")})
	wrong, _ := reg.push(t, "wrong", "v1", map[string]string{"cm.yaml": cmYAML(ns, "wrong")})
	reg.sign(t, "wrong", wrong, other)
	verify := &sourcev1.OCIRepositoryVerification{Provider: "cosign", SecretRef: &meta.LocalObjectReference{Name: "cosign-pub"}}
	for _, n := range []string{"signed", "unsigned", "wrong"} {
		o := ociRepo(ns, n, "oci://"+reg.host()+"/"+n, &sourcev1.OCIRepositoryRef{Tag: "v1"})
		o.Spec.Verify = verify
		g.Expect(testClient.Create(testCtx, o)).To(Succeed())
	}
	keyless := ociRepo(ns, "keyless", "oci://"+reg.host()+"/signed", nil)
	keyless.Spec.Verify = &sourcev1.OCIRepositoryVerification{Provider: "cosign"}
	aws := ociRepo(ns, "aws", "oci://"+reg.host()+"/signed", nil)
	aws.Spec.Provider = "aws"
	g.Expect(testClient.Create(testCtx, keyless)).To(Succeed())
	g.Expect(testClient.Create(testCtx, aws)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(ociReady(g, ns, "signed")).To(Equal("v1@" + signed))
		c := condition(g, getOCIRepo(g, ns, "signed").Status.Conditions, sourcev1.SourceVerifiedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).To(Equal("verified signature of revision v1@" + signed))
		for _, n := range []string{"unsigned", "wrong"} {
			ociFailed(g, ns, n, verificationErrorReason)
			o := getOCIRepo(g, ns, n)
			g.Expect(condition(g, o.Status.Conditions, sourcev1.SourceVerifiedCondition).Status).To(Equal(metav1.ConditionFalse))
			g.Expect(o.Status.Artifact).To(BeNil())
		}
		g.Expect(ociFailed(g, ns, "keyless", UnsupportedFieldReason).Message).To(ContainSubstring("keyless"))
		g.Expect(ociFailed(g, ns, "aws", UnsupportedFieldReason).Message).To(ContainSubstring(`spec.provider "aws"`))
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
}
