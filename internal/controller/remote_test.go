package controller

import (
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	"github.com/lacre/lacre/internal/testcluster"
)

const execKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:1
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /bin/false
      interactiveMode: Never
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`

// TestKubeConfigRemoteCluster: spec.kubeConfig.secretRef applies, prunes
// on deletion and impersonates spec.serviceAccountName on a second API
// server, never on the local one; a kubeconfig with an exec plugin is
// refused (no --insecure-kubeconfig-exec).
func TestKubeConfigRemoteCluster(t *testing.T) {
	g, ns := clusterTest(t)
	remote, err := testcluster.Start(testCtx, testcluster.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(remote.Stop)
	rc, err := client.New(restConfig(remote), client.Options{Scheme: NewScheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rc.Create(testCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	kubeconfig, err := os.ReadFile(remote.Kubeconfig())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "remote-kc"},
		Data: map[string][]byte{"value": kubeconfig, "exec": []byte(execKubeconfig)}})).To(Succeed())

	repo := newGitRepo(t, "remote")
	repo.Commit("cm", map[string]string{"app/cm.yaml": cmYAML(ns, "remote-cm")})
	createSource(t, g, ns, repo.URL())
	ks := newKS(ns, "remote", "./app")
	ks.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "remote-kc"}}
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	g.Eventually(func(g Gomega) { ksReady(g, ns, "remote") }, 90*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(rc.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "remote-cm"}, &corev1.ConfigMap{})).To(Succeed())
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "remote-cm")).To(BeFalse(), "applied to the local cluster")

	// An exec plugin: refused, naming the field and the flag.
	bad := newKS(ns, "remote-exec", "./app")
	bad.Spec.KubeConfig = &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "remote-kc", Key: "exec"}}
	g.Expect(testClient.Create(testCtx, bad)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, ns, "remote-exec", UnsupportedFieldReason)
		g.Expect(c.Message).To(ContainSubstring("--insecure-kubeconfig-exec"))
		g.Expect(condition(g, getKS(g, ns, "remote-exec").Status.Conditions, meta.StalledCondition).Status).To(Equal(metav1.ConditionTrue))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// serviceAccountName is impersonated on the remote cluster, which has
	// no RBAC for it: the apply is forbidden there.
	k := getKS(g, ns, "remote")
	k.Spec.ServiceAccountName = "deployer"
	g.Expect(testClient.Update(testCtx, k)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ksFailed(g, ns, "remote", kustomizev1.ReconciliationFailedReason)
		g.Expect(c.Message).To(ContainSubstring("orbidden"))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	k = getKS(g, ns, "remote")
	k.Spec.ServiceAccountName = ""
	g.Expect(testClient.Update(testCtx, k)).To(Succeed())
	g.Eventually(func(g Gomega) { ksReady(g, ns, "remote") }, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// Deleting it (prune) deletes the remote object.
	deleteAndWaitGone(g, k)
	err = rc.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "remote-cm"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "remote object left: %v", err)
}
