package meta

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretKeyReference names a Secret in the same namespace and, optionally,
// a key in it (an implementation-specific default when empty).
type SecretKeyReference struct {
	// Name of the Secret.
	// +required
	Name string `json:"name"`

	// Key in the Secret, when not specified an implementation-specific default key is used.
	// +optional
	Key string `json:"key,omitempty"`
}

// KubeConfigReference locates the kubeconfig of a remote cluster: a Secret
// holding a kubeconfig file, or a ConfigMap describing a cloud-provider
// (workload identity) connection.
// +kubebuilder:validation:XValidation:rule="has(self.configMapRef) || has(self.secretRef)", message="exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"
// +kubebuilder:validation:XValidation:rule="!has(self.configMapRef) || !has(self.secretRef)", message="exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"
type KubeConfigReference struct {
	// ConfigMapRef names a ConfigMap with the keys provider, cluster,
	// address, ca.crt, audiences and serviceAccountName describing a
	// connection authenticated by a cloud provider's workload identity.
	// Mutually exclusive with SecretRef.
	// +optional
	ConfigMapRef *LocalObjectReference `json:"configMapRef,omitempty"`

	// SecretRef names a Secret with a key holding the kubeconfig file. If
	// no key is set, the key 'value' (then 'value.yaml') is read.
	// Mutually exclusive with ConfigMapRef.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`
}

// HistoryMaxSize is the number of snapshots a History keeps.
const HistoryMaxSize = 5

// History is the reconciliation history of a set of objects, the most
// recently reconciled snapshot first.
type History []Snapshot

// Latest returns the most recent snapshot, nil when there is none.
func (h History) Latest() *Snapshot {
	if len(h) == 0 {
		return nil
	}
	return &h[0]
}

// Upsert records a reconciliation: the snapshot with the same digest and
// status is updated and moved first, else a new one is put first; the
// history is then cut to HistoryMaxSize entries.
func (h *History) Upsert(digest string, at metav1.Time, took metav1.Duration, status string, md map[string]string) {
	old := *h
	var cur Snapshot
	rest := make(History, 0, len(old)+1)
	found := false
	for _, s := range old {
		if !found && s.Digest == digest && s.LastReconciledStatus == status {
			cur, found = s, true
			continue
		}
		rest = append(rest, s)
	}
	if !found {
		cur = Snapshot{Digest: digest, FirstReconciled: at, LastReconciledStatus: status}
	}
	cur.LastReconciled = at
	cur.LastReconciledDuration = took
	cur.TotalReconciliations++
	cur.Metadata = md
	out := append(History{cur}, rest...)
	if len(out) > HistoryMaxSize {
		out = out[:HistoryMaxSize]
	}
	*h = out
}

// Snapshot records the reconciliations of one set of objects with one
// outcome.
type Snapshot struct {
	// Digest is the checksum in the format `<algo>:<hex>` of the resources in this snapshot.
	// +required
	Digest string `json:"digest"`

	// FirstReconciled is the time when this revision was first reconciled to the cluster.
	// +required
	FirstReconciled metav1.Time `json:"firstReconciled"`

	// LastReconciled is the time when this revision was last reconciled to the cluster.
	// +required
	LastReconciled metav1.Time `json:"lastReconciled"`

	// LastReconciledDuration is time it took to reconcile the resources in this revision.
	// +kubebuilder:validation:Type=string
	// +required
	LastReconciledDuration metav1.Duration `json:"lastReconciledDuration"`

	// LastReconciledStatus is the status of the last reconciliation.
	// +required
	LastReconciledStatus string `json:"lastReconciledStatus"`

	// TotalReconciliations is the total number of reconciliations that have occurred for this snapshot.
	// +required
	TotalReconciliations int64 `json:"totalReconciliations"`

	// Metadata contains additional information about the snapshot.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
}
