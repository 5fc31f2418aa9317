package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/lacre/lacre/api/meta"
)

// Metrics hold names, namespaces, kinds, reasons and counts only: never a
// value, a key or a message.
var (
	// UnwrapCalls counts real data-key unwraps (cache misses) by key type.
	UnwrapCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lacre_key_unwraps_total",
		Help: "Data-key unwrap operations performed (cache misses), by master key type.",
	}, []string{"type"})
	// ReconcileDuration is the time one reconcile took, by kind.
	ReconcileDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lacre_reconcile_duration_seconds",
		Help:    "Duration of reconciles, by kind.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"kind"})
	// ReconcileCondition is 1 for an object's current Ready status (like
	// Flux's gotk_reconcile_condition).
	ReconcileCondition = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lacre_reconcile_condition",
		Help: "The Ready condition of each object: 1 for the current status, 0 for the others.",
	}, []string{"kind", "namespace", "name", "type", "status"})
	// The gotk_* series are Flux's (fluxcd/pkg/runtime/metrics), with its
	// names, labels and buckets, so Flux's dashboards and alerts work.
	// Current Flux controllers only fill gotk_reconcile_duration_seconds;
	// lacre also fills gotk_reconcile_condition (Ready) and
	// gotk_suspend_status as Flux 2.0 did (Flux 2.1+ registers them empty
	// and points to kube-state-metrics' gotk_resource_info).
	GotkReconcileDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gotk_reconcile_duration_seconds",
		Help:    "Seconds each reconcile took, per object (Flux's series).",
		Buckets: prometheus.ExponentialBucketsRange(10e-3, 1800, 10),
	}, []string{"kind", "name", "namespace"})
	GotkReconcileCondition = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gotk_reconcile_condition",
		Help: "1 for the status of each object's Ready condition, 0 for the others (Flux's series).",
	}, []string{"kind", "name", "namespace", "type", "status"})
	GotkSuspendStatus = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gotk_suspend_status",
		Help: "1 when the object is suspended, else 0 (Flux's series).",
	}, []string{"kind", "name", "namespace"})
	// Decryptions counts Kustomization decryption outcomes.
	Decryptions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lacre_decryptions_total",
		Help: "Kustomization builds with SOPS decryption, by outcome: success, no_key, mac_mismatch, tampered, plaintext_secret, secret_error.",
	}, []string{"outcome"})
	// UnchangedBuilds counts Kustomization reconciles that skipped the
	// apply: the build was what the last full apply applied.
	UnchangedBuilds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lacre_unchanged_builds_total",
		Help: "Kustomization reconciles whose build was unchanged since the last full apply (no dry run, apply or prune).",
	})
)

func init() {
	metrics.Registry.MustRegister(UnwrapCalls, ReconcileDuration, ReconcileCondition, Decryptions, UnchangedBuilds,
		GotkReconcileDuration, GotkReconcileCondition, GotkSuspendStatus)
}

// recordCondition sets the object's Ready gauge.
func recordCondition(kind, ns, name string, conds []metav1.Condition) {
	c := apimeta.FindStatusCondition(conds, meta.ReadyCondition)
	cur := "Unknown"
	if c != nil {
		cur = string(c.Status)
	}
	for _, s := range []string{"True", "False", "Unknown"} {
		v := 0.0
		if s == cur {
			v = 1
		}
		ReconcileCondition.WithLabelValues(kind, ns, name, meta.ReadyCondition, s).Set(v)
		GotkReconcileCondition.WithLabelValues(kind, name, ns, meta.ReadyCondition, s).Set(v)
	}
}

// recordSuspend sets the object's gotk_suspend_status.
func recordSuspend(kind, ns, name string, suspended bool) {
	v := 0.0
	if suspended {
		v = 1
	}
	GotkSuspendStatus.WithLabelValues(kind, name, ns).Set(v)
}

// forgetObject drops a deleted object's gauges.
func forgetObject(kind, ns, name string) {
	l := prometheus.Labels{"kind": kind, "namespace": ns, "name": name}
	ReconcileCondition.DeletePartialMatch(l)
	GotkReconcileCondition.DeletePartialMatch(l)
	GotkReconcileDuration.DeletePartialMatch(l)
	GotkSuspendStatus.DeletePartialMatch(l)
}

func observeDuration(kind, ns, name string, start time.Time) {
	d := time.Since(start).Seconds()
	ReconcileDuration.WithLabelValues(kind).Observe(d)
	GotkReconcileDuration.WithLabelValues(kind, name, ns).Observe(d)
}
