// Package meta holds the types and constants shared by lacre's APIs,
// field-compatible with Flux's github.com/fluxcd/pkg/apis/meta.
// +kubebuilder:object:generate=true
package meta

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons (kstatus-compatible, the same strings as Flux).
const (
	ReadyCondition       = "Ready"
	ReconcilingCondition = "Reconciling"
	StalledCondition     = "Stalled"
	HealthyCondition     = "Healthy"

	SucceededReason            = "Succeeded"
	FailedReason               = "Failed"
	ProgressingReason          = "Progressing"
	ProgressingWithRetryReason = "ProgressingWithRetry"
	SuspendedReason            = "Suspended"
	DependencyNotReadyReason   = "DependencyNotReady"
	InvalidURLReason           = "InvalidURL"
	AccessDeniedReason         = "AccessDenied"
)

// ReconcileRequestAnnotation asks for an immediate reconcile when its value
// changes (`flux reconcile` sets it to the current time).
const ReconcileRequestAnnotation = "reconcile.fluxcd.io/requestedAt"

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the referent.
	// +required
	Name string `json:"name"`
}

// NamespacedObjectReference names an object, optionally in another namespace.
type NamespacedObjectReference struct {
	// Name of the referent.
	// +required
	Name string `json:"name"`
	// Namespace of the referent, defaults to the namespace of the object
	// that refers to it.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// InvalidCELExpressionReason: a CEL expression of the spec does not
// compile (Flux's reason).
const InvalidCELExpressionReason = "InvalidCELExpression"

// DependencyReference names a dependency, optionally in another namespace,
// with an optional CEL expression assessing its readiness.
type DependencyReference struct {
	// Name of the referent.
	// +required
	Name string `json:"name"`
	// Namespace of the referent, defaults to the namespace of the object
	// that refers to it.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// ReadyExpr is a CEL expression that can be used to assess the readiness
	// of a dependency. When specified, the built-in readiness check
	// is replaced by the logic defined in the CEL expression.
	// To make the CEL expression additive to the built-in readiness check,
	// the feature gate `AdditiveCELDependencyCheck` must be set to `true`.
	// +optional
	ReadyExpr string `json:"readyExpr,omitempty"`
}

// NamespacedObjectKindReference names an object of a kind.
type NamespacedObjectKindReference struct {
	// API version of the referent.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the referent.
	// +required
	Kind string `json:"kind"`
	// Name of the referent.
	// +required
	Name string `json:"name"`
	// Namespace of the referent, defaults to the namespace of the object
	// that refers to it.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ReconcileRequestStatus records the last handled reconcile request.
type ReconcileRequestStatus struct {
	// LastHandledReconcileAt holds the value of the most recent
	// reconcile request value, so a change of the annotation value
	// can be detected.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// Artifact is the output of a source reconciliation.
type Artifact struct {
	// Path is the relative file path of the Artifact.
	// +required
	Path string `json:"path"`
	// URL is the HTTP address of the Artifact as exposed by the controller.
	// +required
	URL string `json:"url"`
	// Revision is a human-readable identifier traceable in the origin
	// source system, e.g. main@sha1:<hex>.
	// +required
	Revision string `json:"revision"`
	// Digest is the digest of the file in the form '<algorithm>:<checksum>'.
	// +optional
	// +kubebuilder:validation:Pattern="^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"
	Digest string `json:"digest,omitempty"`
	// LastUpdateTime is the timestamp of the last change of the Artifact.
	// +required
	LastUpdateTime metav1.Time `json:"lastUpdateTime"`
	// Size is the number of bytes in the file.
	// +optional
	Size *int64 `json:"size,omitempty"`
	// Metadata holds upstream information such as OCI annotations.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
}
