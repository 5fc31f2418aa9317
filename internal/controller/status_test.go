package controller

// Flux's status, dependency, event and metric rules (issue 14, items 4 and
// 6), on the real API server.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/events"
)

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: NS
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
`

// TestStatusAsFlux: while the health checks run, Reconciling=True and
// Ready=Unknown (Progressing) are visible; when they fail, Ready=False
// HealthCheckFailed, Reconciling turns ProgressingWithRetry, and neither
// lastAppliedRevision nor observedGeneration is recorded (only
// lastAttemptedRevision); once healthy, Ready=True ReconciliationSucceeded,
// Reconciling is gone, and both are recorded. The gotk_* metrics follow.
func TestStatusAsFlux(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "r")
	commit := repo.Commit("c", map[string]string{"apps/deploy.yaml": replaceNS(deploymentYAML, ns)})
	rev := "main@sha1:" + commit
	createSource(t, g, ns, repo.URL())
	ks := newKS(ns, "apps", "./apps")
	ks.Spec.RetryInterval = &metav1.Duration{Duration: time.Second}
	ks.Spec.Timeout = &metav1.Duration{Duration: 4 * time.Second}
	ks.Spec.Wait = true
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())

	g.Eventually(func(g Gomega) {
		k := getKS(g, ns, "apps")
		c := condition(g, k.Status.Conditions, meta.ReconcilingCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(meta.ProgressingReason))
		g.Expect(c.Message).To(ContainSubstring("Running health checks for revision " + rev))
		r := condition(g, k.Status.Conditions, meta.ReadyCondition)
		g.Expect(r.Status).To(Equal(metav1.ConditionUnknown))
		g.Expect(r.Reason).To(Equal(meta.ProgressingReason))
	}, 60*time.Second, 50*time.Millisecond).Should(Succeed())

	g.Eventually(func(g Gomega) {
		k := getKS(g, ns, "apps")
		c := condition(g, k.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse), fmt.Sprintf("%+v", k.Status))
		g.Expect(c.Reason).To(Equal(kustomizev1.HealthCheckFailedReason))
		g.Expect(c.ObservedGeneration).To(Equal(k.Generation))
		g.Expect(condition(g, k.Status.Conditions, meta.ReconcilingCondition).Reason).To(Equal(meta.ProgressingWithRetryReason))
		g.Expect(k.Status.LastAttemptedRevision).To(Equal(rev))
		g.Expect(k.Status.LastAppliedRevision).To(BeEmpty())
		g.Expect(k.Status.ObservedGeneration).To(BeNumerically("<", k.Generation)) // the CRD default, -1
	}, 60*time.Second, 50*time.Millisecond).Should(Succeed())

	// Play the kubelet: report the Deployment as rolled out.
	dep := &appsv1.Deployment{}
	g.Expect(testClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "web"}, dep)).To(Succeed())
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}, {Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}
	g.Expect(testClient.Status().Update(testCtx, dep)).To(Succeed())
	g.Eventually(func(g Gomega) {
		k := ksReady(g, ns, "apps")
		c := condition(g, k.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Reason).To(Equal(kustomizev1.ReconciliationSucceededReason))
		g.Expect(c.Message).To(Equal("Applied revision: " + rev))
		g.Expect(apimeta.FindStatusCondition(k.Status.Conditions, meta.ReconcilingCondition)).To(BeNil())
		g.Expect(apimeta.FindStatusCondition(k.Status.Conditions, meta.StalledCondition)).To(BeNil())
		g.Expect(k.Status.LastAppliedRevision).To(Equal(rev))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// The GitRepository: Ready=True Succeeded (source-controller's reason),
	// ArtifactInStorage, observedGeneration.
	src := getRepo(g, ns, "my-secrets")
	g.Expect(condition(g, src.Status.Conditions, meta.ReadyCondition).Reason).To(Equal(meta.SucceededReason))
	g.Expect(condition(g, src.Status.Conditions, sourcev1.ArtifactInStorageCondition).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(apimeta.FindStatusCondition(src.Status.Conditions, meta.ReconcilingCondition)).To(BeNil())
	g.Expect(src.Status.ObservedGeneration).To(Equal(src.Generation))

	// Flux's series, labelled kind, name, namespace.
	lbl := map[string]string{"kind": kustomizev1.KustomizationKind, "name": "apps", "namespace": ns}
	g.Expect(gather(g, "gotk_reconcile_duration_seconds", lbl).GetHistogram().GetSampleCount()).To(BeNumerically(">", 0))
	g.Expect(gather(g, "gotk_suspend_status", lbl).GetGauge().GetValue()).To(BeZero())
	ready := map[string]string{"kind": kustomizev1.KustomizationKind, "name": "apps", "namespace": ns, "type": "Ready", "status": "True"}
	g.Expect(gather(g, "gotk_reconcile_condition", ready).GetGauge().GetValue()).To(Equal(1.0))
}

func replaceNS(s, ns string) string {
	return strings.ReplaceAll(s, "NS", ns)
}

// gather returns the metric name with (at least) the labels lbl.
func gather(g Gomega, name string, lbl map[string]string) *dto.Metric {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range lbl {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	g.Expect(name).To(BeEmpty(), "no such series")
	return nil
}

// TestDependsOnSameSourceRevision: a dependency on the same source must
// have applied the source's current revision (Flux's rule), so the order
// of a dependency chain holds within one commit.
func TestDependsOnSameSourceRevision(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "r")
	repo.Commit("c1", map[string]string{"infra/cm.yaml": cmYAML(ns, "infra-1"), "apps/cm.yaml": cmYAML(ns, "apps-1")})
	createSource(t, g, ns, repo.URL())
	infra := newKS(ns, "infra", "./infra")
	g.Expect(testClient.Create(testCtx, infra)).To(Succeed())
	apps := newKS(ns, "apps", "./apps")
	apps.Spec.DependsOn = []meta.DependencyReference{{Name: "infra"}}
	g.Expect(testClient.Create(testCtx, apps)).To(Succeed())
	var rev1 string
	g.Eventually(func(g Gomega) {
		rev1 = ksReady(g, ns, "infra").Status.LastAppliedRevision
		g.Expect(ksReady(g, ns, "apps").Status.LastAppliedRevision).To(Equal(rev1))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// Hold infra at the first revision: suspend it and record, as its
	// status, that it is Ready for its new generation at that revision.
	k := getKS(g, ns, "infra")
	k.Spec.Suspend = true
	g.Expect(testClient.Update(testCtx, k)).To(Succeed())
	g.Eventually(func(g Gomega) {
		k := getKS(g, ns, "infra")
		k.Status.ObservedGeneration = k.Generation
		g.Expect(testClient.Status().Update(testCtx, k)).To(Succeed())
	}, 30*time.Second, 250*time.Millisecond).Should(Succeed())

	c2 := repo.Commit("c2", map[string]string{"infra/cm.yaml": cmYAML(ns, "infra-2"), "apps/cm.yaml": cmYAML(ns, "apps-2")})
	requestReconcile(g, getRepo(g, ns, "my-secrets"))
	g.Eventually(func(g Gomega) {
		k := getKS(g, ns, "apps")
		c := condition(g, k.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(meta.DependencyNotReadyReason))
		g.Expect(c.Message).To(Equal("dependency '" + ns + "/infra' revision is not up to date"))
		g.Expect(k.Status.LastAppliedRevision).To(Equal(rev1))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "apps-2")).To(BeFalse())

	// Resume infra: it applies the second revision, then apps does.
	k = getKS(g, ns, "infra")
	k.Spec.Suspend = false
	g.Expect(testClient.Update(testCtx, k)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(ksReady(g, ns, "infra").Status.LastAppliedRevision).To(Equal("main@sha1:" + c2))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())
	reconcileHandled(g, ns, "apps", true)
	g.Expect(getKS(g, ns, "apps").Status.LastAppliedRevision).To(Equal("main@sha1:" + c2))
	g.Expect(exists(g, &corev1.ConfigMap{}, ns, "apps-2")).To(BeTrue())
}

// eventReceiver is a local HTTP server speaking Flux's event API, as
// Flux's notification-controller does: it keeps the events POSTed to it.
type eventReceiver struct {
	mu  sync.Mutex
	got []events.Event
}

func (e *eventReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev events.Event
	data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.Method != http.MethodPost || json.Unmarshal(data, &ev) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.got = append(e.got, ev)
	e.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// find returns the first event about kind ns/name with reason.
func (e *eventReceiver) find(kind, ns, name, reason string) *events.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.got {
		o := e.got[i].InvolvedObject
		if o.Kind == kind && o.Namespace == ns && o.Name == name && e.got[i].Reason == reason {
			return &e.got[i]
		}
	}
	return nil
}

// TestEventsToNotificationController: with --events-addr, a manager POSTs
// the GitRepository's and the Kustomization's events, with Flux's revision
// metadata, in Flux's event API format; they are Kubernetes events too.
func TestEventsToNotificationController(t *testing.T) {
	g, ns := clusterTest(t)
	recv := &eventReceiver{}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	mgr, err := NewManager(Options{Config: restConfig(testEnv), Concurrent: 1, WatchSelector: isolatedLabel + "=true", EventsAddr: srv.URL + "/"})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(testCtx)
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	repo := newGitRepo(t, "r")
	commit := repo.Commit("c", map[string]string{"apps/cm.yaml": cmYAML(ns, "cm"), "bad/kustomization.yaml": "resources: [missing.yaml]\n"})
	rev := "main@sha1:" + commit
	lbl := map[string]string{isolatedLabel: "true"}
	src := gitRepo(ns, "my-secrets", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Labels = lbl
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	ks := newKS(ns, "apps", "./apps")
	ks.Labels = lbl
	g.Expect(testClient.Create(testCtx, ks)).To(Succeed())
	bad := newKS(ns, "bad", "./bad")
	bad.Labels = lbl
	g.Expect(testClient.Create(testCtx, bad)).To(Succeed())

	g.Eventually(func(g Gomega) {
		ev := recv.find(sourcev1.GitRepositoryKind, ns, "my-secrets", sourcev1.NewArtifactReason)
		g.Expect(ev).NotTo(BeNil())
		g.Expect(ev.Severity).To(Equal(events.SeverityInfo))
		g.Expect(ev.ReportingController).To(Equal("source-controller"))
		g.Expect(ev.Metadata).To(HaveKeyWithValue("source.toolkit.fluxcd.io/revision", rev))
		g.Expect(ev.Metadata).To(HaveKey("source.toolkit.fluxcd.io/digest"))

		ev = recv.find(kustomizev1.KustomizationKind, ns, "apps", kustomizev1.ReconciliationSucceededReason)
		g.Expect(ev).NotTo(BeNil())
		g.Expect(ev.Severity).To(Equal(events.SeverityInfo))
		g.Expect(ev.ReportingController).To(Equal("kustomize-controller"))
		g.Expect(ev.InvolvedObject.APIVersion).To(Equal(kustomizev1.GroupVersion.String()))
		g.Expect(ev.Message).To(HavePrefix("Reconciliation finished in "))
		g.Expect(ev.Metadata).To(Equal(map[string]string{
			"kustomize.toolkit.fluxcd.io/revision": rev, "kustomize.toolkit.fluxcd.io/commit_status": "update"}))

		ev = recv.find(kustomizev1.KustomizationKind, ns, "bad", kustomizev1.BuildFailedReason)
		g.Expect(ev).NotTo(BeNil())
		g.Expect(ev.Severity).To(Equal(events.SeverityError))
		g.Expect(ev.Metadata).To(HaveKeyWithValue("kustomize.toolkit.fluxcd.io/revision", rev))
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed())

	// The same events are Kubernetes events, their metadata as annotations.
	g.Eventually(func(g Gomega) {
		var list corev1.EventList
		g.Expect(testClient.List(testCtx, &list, client.InNamespace(ns))).To(Succeed())
		found := false
		for _, e := range list.Items {
			if e.InvolvedObject.Name == "apps" && e.Reason == kustomizev1.ReconciliationSucceededReason {
				found = e.Annotations["kustomize.toolkit.fluxcd.io/revision"] == rev && e.Source.Component == "kustomize-controller"
			}
		}
		g.Expect(found).To(BeTrue())
	}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
}

// TestGitRepositoryStatusAsFlux: source-controller's rules: a failure that
// will be retried leaves observedGeneration and turns Reconciling into
// ProgressingWithRetry beside FetchFailed; the next success records
// observedGeneration and removes Reconciling and FetchFailed.
func TestGitRepositoryStatusAsFlux(t *testing.T) {
	g, ns := clusterTest(t)
	repo := newGitRepo(t, "r")
	commit := repo.Commit("c", map[string]string{"apps/cm.yaml": cmYAML(ns, "cm")})
	src := gitRepo(ns, "repo", repo.URL(), &sourcev1.GitRepositoryRef{Branch: "main"})
	src.Spec.SecretRef = &meta.LocalObjectReference{Name: "later"}
	g.Expect(testClient.Create(testCtx, src)).To(Succeed())
	g.Eventually(func(g Gomega) {
		o := getRepo(g, ns, "repo")
		c := condition(g, o.Status.Conditions, meta.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(sourcev1.AuthenticationFailedReason))
		g.Expect(c.ObservedGeneration).To(Equal(o.Generation))
		g.Expect(condition(g, o.Status.Conditions, sourcev1.FetchFailedCondition).Reason).To(Equal(sourcev1.AuthenticationFailedReason))
		g.Expect(condition(g, o.Status.Conditions, meta.ReconcilingCondition).Reason).To(Equal(meta.ProgressingWithRetryReason))
		g.Expect(apimeta.FindStatusCondition(o.Status.Conditions, meta.StalledCondition)).To(BeNil())
		g.Expect(o.Status.ObservedGeneration).To(BeNumerically("<", o.Generation))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	g.Expect(testClient.Create(testCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later"}})).To(Succeed())
	requestReconcile(g, getRepo(g, ns, "repo"))
	g.Eventually(func(g Gomega) {
		g.Expect(readyRevision(g, ns, "repo")).To(Equal("main@sha1:" + commit))
		o := getRepo(g, ns, "repo")
		g.Expect(condition(g, o.Status.Conditions, meta.ReadyCondition).Reason).To(Equal(meta.SucceededReason))
		g.Expect(apimeta.FindStatusCondition(o.Status.Conditions, meta.ReconcilingCondition)).To(BeNil())
		g.Expect(apimeta.FindStatusCondition(o.Status.Conditions, sourcev1.FetchFailedCondition)).To(BeNil())
		g.Expect(apimeta.FindStatusCondition(o.Status.Conditions, sourcev1.ArtifactOutdatedCondition)).To(BeNil())
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}
