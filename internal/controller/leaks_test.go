package controller

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/internal/testsupport"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// TestNoLeaksControllers runs a canary Secret through a controller of its
// own (debug logs into a buffer; --require-encrypted-secrets; a 1 MiB
// artifact limit) on the success path and the error paths: a tampered
// file, the wrong key, a Secret the API server rejects, invalid UTF-8 in
// each store a build decrypts (dotenv, json, ini, binary), a Secret
// committed in clear, a checkout over the size limit, a Git password in
// the URL's Secret. The canary (plain or base64) must not be in
// the logs, events, conditions, metrics, or any file written under the
// artifact storage and TMPDIR.
func TestNoLeaksControllers(t *testing.T) {
	needCluster(t)
	const canary = "leak-CANARY-0d9e44"
	const gitPass = "git-PASS-CANARY-77aa"
	// In clear in Git (so in the artifact), but never in a message.
	const clearCanary = "clear-CANARY-5e1b90"
	start := time.Now()
	g := NewWithT(t)
	ns := newNamespace(t)
	lbl := map[string]string{isolatedLabel: "true"}
	id, r := newAgeKey(t)
	wrong, _ := newAgeKey(t)
	var logs testsupport.SyncBuffer
	startIsolatedWith(t, &logs, Options{Concurrent: 1, RequireEncryptedSecrets: true, Limits: artifact.Limits{MaxTotalSize: 1 << 20}})
	srv := gittest.New(t, "git", gitPass)
	repo := srv.NewRepo("r", "main")
	good := encryptFor(t, r, secretYAML(ns, "db", canary))
	c1 := repo.Commit("one", map[string]string{"apps/db.yaml": good, "apps/a.yaml": cmYAML(ns, "a")})
	putAgeSecret(g, ns, "sops-age", id)
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git-auth"},
		StringData: map[string]string{"username": "git", "password": gitPass}})).To(Succeed())
	src := gitRepo(ns, "my-secrets", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Labels = lbl
	src.Spec.SecretRef = &meta.LocalObjectReference{Name: "git-auth"}
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	g.Expect(testClient.Create(testCtx, faultKS(ns, "sops-age", lbl))).To(Succeed())
	appliedAt(g, ns, c1, 90*time.Second)
	g.Expect(secretValue(g, ns, "db")).To(Equal(canary))

	// A tampered file (MAC mismatch).
	repo.Commit("tamper", map[string]string{"apps/db.yaml": strings.Replace(good, "name: db", "name: db2", 1)})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) { g.Expect(c.Message).To(ContainSubstring("MAC")) })

	// The wrong key.
	repo.Commit("fix", map[string]string{"apps/db.yaml": good})
	putAgeSecret(g, ns, "sops-age", wrong)
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.DecryptionFailedReason))
		g.Expect(c.Message).To(ContainSubstring("apps/db.yaml"))
	})
	putAgeSecret(g, ns, "sops-age", id)

	// A decrypted Secret the API server refuses (an invalid data key).
	bad := encryptFor(t, r, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: "+ns+"\nstringData:\n  password: "+canary+"\n  \"bad key!\": "+canary+"\n")
	repo.Commit("invalid", map[string]string{"apps/db.yaml": bad})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) {
		g.Expect(c.Reason).To(Equal(kustomizev1.ReconciliationFailedReason))
		g.Expect(c.Message).To(ContainSubstring("Secret/" + ns + "/db"))
	})

	// An encrypted .env in a secretGenerator whose value holds invalid
	// UTF-8: kustomize's error quotes the line (issue 17 item 5).
	envOut, err := sopsfile.Encrypt(testCtx, []byte("PASSWORD="+canary+"\xff\xfe\n"), sopsfile.EncryptOptions{
		InputFormat: formats.Dotenv, OutputFormat: formats.Dotenv, Groups: [][]keys.Recipient{{r}}})
	g.Expect(err).NotTo(HaveOccurred())
	repo.Commit("env", map[string]string{"apps/db.yaml": good, "apps/app.env": string(envOut),
		"apps/kustomization.yaml": "resources: [db.yaml, a.yaml]\nsecretGenerator:\n  - name: gen\n    envs: [app.env]\n"})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) { g.Expect(c.Message).To(ContainSubstring("apps/app.env: line 1")) })

	// Invalid UTF-8 in the other stores a build decrypts: each build
	// succeeds or fails without the value.
	for _, tc := range []struct{ file, plain, kust string }{
		{"cm.json", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u", "namespace": "` + ns + `"}, "data": {"k": "` + canary + "\xff\xfe" + `"}}`, "resources: [db.yaml, cm.json]\n"},
		{"app.ini", "[s]\nk = " + canary + "\xff\xfe\n", "resources: [db.yaml]\nsecretGenerator:\n  - name: gen\n    files: [app.ini]\n"},
		{"app.bin", canary + "\xff\xfe", "resources: [db.yaml]\nsecretGenerator:\n  - name: gen\n    files: [app.bin]\n"},
	} {
		format := formats.FormatForPath(tc.file)
		out, err := sopsfile.Encrypt(testCtx, []byte(tc.plain), sopsfile.EncryptOptions{InputFormat: format, OutputFormat: format, Groups: [][]keys.Recipient{{r}}})
		g.Expect(err).NotTo(HaveOccurred(), tc.file)
		c := repo.Commit(tc.file, map[string]string{"apps/db.yaml": good, "apps/" + tc.file: string(out), "apps/kustomization.yaml": tc.kust})
		requestReconcile(g, getRepo(g, ns, "my-secrets"))
		g.Eventually(func(g Gomega) {
			g.Expect(getKS(g, ns, "apps").Status.LastAttemptedRevision).To(Equal("main@sha1:" + c))
		}, 60*time.Second, 250*time.Millisecond).Should(Succeed(), tc.file)
	}

	// A Secret committed in clear (--require-encrypted-secrets).
	repo.Commit("clear", map[string]string{"apps/db.yaml": secretYAML(ns, "db", clearCanary), "apps/kustomization.yaml": "resources: [db.yaml, a.yaml]\n"})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	ksFailing(g, ns, func(g Gomega, c *metav1.Condition) { g.Expect(c.Message).To(ContainSubstring("db")) })

	// A checkout over the size limit, of canary bytes.
	repo.Commit("big", map[string]string{"apps/db.yaml": good, "apps/big.txt": strings.Repeat(clearCanary+"\n", 80_000)})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "my-secrets").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Reason).To(Equal(sourcev1.ArtifactTooLargeReason))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	repo.Commit("small", map[string]string{"apps/db.yaml": good, "apps/big.txt": ""})

	// A wrong Git password.
	sec := &corev1.Secret{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "git-auth"}, sec)).To(Succeed())
	sec.Data = nil
	sec.StringData = map[string]string{"username": "git", "password": canary}
	g.Expect(testClient.Update(testCtx, sec)).To(Succeed())
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	g.Eventually(func(g Gomega) {
		c := condition(g, getRepo(g, ns, "my-secrets").Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Reason).To(Equal(sourcev1.AuthenticationFailedReason))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// Fixed again: converges.
	sec.StringData = map[string]string{"username": "git", "password": gitPass}
	g.Expect(testClient.Update(testCtx, sec)).To(Succeed())
	c5 := repo.Commit("good", map[string]string{"apps/db.yaml": good, "apps/kustomization.yaml": "resources: [db.yaml, a.yaml]\n"})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	appliedAt(g, ns, c5, 60*time.Second)

	needles := []string{canary, base64.StdEncoding.EncodeToString([]byte(canary)), clearCanary, gitPass, base64.StdEncoding.EncodeToString([]byte(gitPass)),
		"AGE-SECRET-KEY", strings.ToLower("AGE-SECRET-KEY")}
	check := func(where, text string) {
		t.Helper()
		for _, n := range needles {
			if strings.Contains(text, n) {
				i := strings.Index(text, n)
				t.Errorf("%s holds %q: ...%s...", where, n, text[max(0, i-200):min(len(text), i+100)])
			}
		}
	}
	if len(logs.String()) == 0 {
		t.Error("the manager logged nothing")
	}
	check("the controller log", logs.String())
	var events corev1.EventList
	g.Expect(testClient.List(testCtx, &events, client.InNamespace(ns))).To(Succeed())
	g.Expect(events.Items).NotTo(BeEmpty())
	for _, e := range events.Items {
		check("event "+e.Name, e.Message+" "+e.Reason)
	}
	for _, c := range getKS(g, ns, "apps").Status.Conditions {
		check("Kustomization condition "+c.Type, c.Message)
	}
	for _, c := range getRepo(g, ns, "my-secrets").Status.Conditions {
		check("GitRepository condition "+c.Type, c.Message)
	}
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var buf bytes.Buffer
	for _, f := range families {
		buf.WriteString(f.String() + "\n")
	}
	g.Expect(buf.String()).To(ContainSubstring("lacre_decryptions_total"))
	check("the metrics", buf.String())
	noPlaintextOnDisk(t, start, canary)
	noPlaintextOnDisk(t, start, gitPass)
}
