package controller

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"filippo.io/age"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// TestSoak is the load test: N Kustomizations (default 200) with an
// encrypted Secret each, reconciled continuously (30 s interval) while Git
// changes every few seconds, for LACRE_SOAK_DURATION (default 10m). It
// checks that no change is missed (every change reaches the cluster) and
// that goroutines and heap stay within stated bounds of their level after
// warm-up. It runs only with LACRE_SOAK=1 (it takes minutes); it prints a
// sample table.
func TestSoak(t *testing.T) {
	if os.Getenv("LACRE_SOAK") != "1" {
		t.Skip("set LACRE_SOAK=1 to run the load test")
	}
	needCluster(t)
	n := envInt("LACRE_SOAK_N", 200)
	dur, err := time.ParseDuration(envOr("LACRE_SOAK_DURATION", "10m"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		goroutineBound = 100      // extra goroutines allowed after warm-up
		heapBound      = 64 << 20 // extra heap allowed after warm-up
	)
	g := NewWithT(t)
	ns := newNamespace(t)
	id, _ := age.GenerateX25519Identity()
	r, _ := agekeys.ParseRecipient(id.Recipient().String())
	secret := func(i, v int) string {
		plain := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s%d\n  namespace: %s\nstringData:\n  value: \"%d\"\n", i, ns, v)
		out, err := sopsfile.Encrypt(testCtx, []byte(plain), sopsfile.EncryptOptions{InputFormat: formats.YAML, OutputFormat: formats.YAML,
			Groups: [][]keys.Recipient{{r}}, Rules: sopsfile.Rules{EncryptedRegex: "^(data|stringData)$"}})
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	configMap := func(i, v int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c%d\n  namespace: %s\ndata:\n  value: \"%d\"\n", i, ns, v)
	}
	repo := newGitRepo(t, "soak")
	files := map[string]string{}
	want := make([]int, n)
	for i := range n {
		files[fmt.Sprintf("apps/a%d/secret.yaml", i)] = secret(i, 0)
		files[fmt.Sprintf("apps/a%d/cm.yaml", i)] = configMap(i, 0)
	}
	repo.Commit("initial", files)
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sops-age"},
		StringData: map[string]string{"age.agekey": id.String()}})).To(Succeed())
	src := gitRepo(ns, "soak", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Spec.Interval = metav1.Duration{Duration: 5 * time.Second}
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	for i := range n {
		g.Expect(testClient.Create(testCtx, &kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("a%d", i)},
			Spec: kustomizev1.KustomizationSpec{
				Interval: metav1.Duration{Duration: 30 * time.Second}, Path: fmt.Sprintf("./apps/a%d", i), Prune: true,
				SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "soak"},
				Decryption: &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}},
			},
		})).To(Succeed())
	}
	converged := func(timeout time.Duration) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			for i := range n {
				s := &corev1.Secret{}
				g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("s%d", i)}, s)).To(Succeed())
				g.Expect(string(s.Data["value"])).To(Equal(strconv.Itoa(want[i])), "Secret s%d", i)
				c := getCM(g, ns, fmt.Sprintf("c%d", i))
				g.Expect(c.Data["value"]).To(Equal(strconv.Itoa(want[i])), "ConfigMap c%d", i)
			}
		}, timeout, time.Second).Should(Succeed())
	}
	start := time.Now()
	converged(5 * time.Minute)
	t.Logf("%d Kustomizations converged in %s", n, time.Since(start).Round(time.Second))

	sample := func() (int, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse
	}
	baseG, baseH := sample()
	t.Logf("%8s %8s %10s %8s", "elapsed", "changes", "goroutines", "heap MB")
	t.Logf("%8s %8d %10d %8.1f", "0s", 0, baseG, float64(baseH)/(1<<20))
	rng := rand.New(rand.NewPCG(1, 2))
	changes, lastSample := 0, time.Now()
	maxG, maxH := baseG, baseH
	soakStart := time.Now()
	for time.Since(soakStart) < dur {
		// Change a few directories (Secret and ConfigMap) in one commit.
		upd := map[string]string{}
		for range 3 {
			i := rng.IntN(n)
			want[i]++
			upd[fmt.Sprintf("apps/a%d/secret.yaml", i)] = secret(i, want[i])
			upd[fmt.Sprintf("apps/a%d/cm.yaml", i)] = configMap(i, want[i])
			changes++
		}
		repo.Commit(fmt.Sprintf("change %d", changes), upd)
		time.Sleep(3 * time.Second)
		if time.Since(lastSample) >= 30*time.Second {
			gr, h := sample()
			maxG, maxH = max(maxG, gr), max(maxH, h)
			t.Logf("%8s %8d %10d %8.1f", time.Since(soakStart).Round(time.Second), changes, gr, float64(h)/(1<<20))
			lastSample = time.Now()
		}
	}
	converged(2 * time.Minute)
	endG, endH := sample()
	t.Logf("after %s: %d changes, all in the cluster; goroutines %d → %d (max %d), heap %.1f → %.1f MB (max %.1f)",
		dur, changes, baseG, endG, maxG, float64(baseH)/(1<<20), float64(endH)/(1<<20), float64(maxH)/(1<<20))
	if endG > baseG+goroutineBound {
		t.Errorf("goroutines grew from %d to %d (bound +%d)", baseG, endG, goroutineBound)
	}
	if endH > baseH+heapBound {
		t.Errorf("heap grew from %.1f to %.1f MB (bound +%d MB)", float64(baseH)/(1<<20), float64(endH)/(1<<20), heapBound>>20)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
