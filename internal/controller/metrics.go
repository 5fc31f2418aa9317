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
	// Decryptions counts Kustomization decryption outcomes.
	Decryptions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lacre_decryptions_total",
		Help: "Kustomization builds with SOPS decryption, by outcome: success, no_key, mac_mismatch, tampered, plaintext_secret, secret_error.",
	}, []string{"outcome"})
)

func init() {
	metrics.Registry.MustRegister(UnwrapCalls, ReconcileDuration, ReconcileCondition, Decryptions)
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
	}
}

// forgetObject drops a deleted object's gauges.
func forgetObject(kind, ns, name string) {
	ReconcileCondition.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": ns, "name": name})
}

func observeDuration(kind string, start time.Time) {
	ReconcileDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}
