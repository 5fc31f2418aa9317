package v1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lacre/lacre/api/meta"
)

// BucketKind is the kind of Bucket.
const BucketKind = "Bucket"

// Bucket providers of spec.provider.
const (
	// BucketProviderGeneric is any S3-compatible object storage.
	BucketProviderGeneric = "generic"
	// BucketProviderAmazon is AWS S3, with the AWS SDK's default
	// credential chain when there is no secretRef.
	BucketProviderAmazon = "aws"
	// BucketProviderGoogle is Google Cloud Storage (refused by lacre).
	BucketProviderGoogle = "gcp"
	// BucketProviderAzure is Azure Blob Storage (refused by lacre).
	BucketProviderAzure = "azure"
)

// STS providers of spec.sts.provider.
const (
	STSProviderAmazon = "aws"
	STSProviderLDAP   = "ldap"
)

// Reasons of Bucket conditions.
const (
	// BucketOperationSucceededReason: listing and fetching succeeded.
	BucketOperationSucceededReason = "BucketOperationSucceeded"
	// BucketOperationFailedReason: listing or fetching failed.
	BucketOperationFailedReason = "BucketOperationFailed"
)

// BucketSpec specifies the object storage bucket to fetch and how.
// +kubebuilder:validation:XValidation:rule="self.provider == 'aws' || self.provider == 'generic' || !has(self.sts)", message="STS configuration is only supported for the 'aws' and 'generic' Bucket providers"
// +kubebuilder:validation:XValidation:rule="self.provider != 'aws' || !has(self.sts) || self.sts.provider == 'aws'", message="'aws' is the only supported STS provider for the 'aws' Bucket provider"
// +kubebuilder:validation:XValidation:rule="self.provider != 'generic' || !has(self.sts) || self.sts.provider == 'ldap'", message="'ldap' is the only supported STS provider for the 'generic' Bucket provider"
// +kubebuilder:validation:XValidation:rule="!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.secretRef)", message="spec.sts.secretRef is not required for the 'aws' STS provider"
// +kubebuilder:validation:XValidation:rule="!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.certSecretRef)", message="spec.sts.certSecretRef is not required for the 'aws' STS provider"
// +kubebuilder:validation:XValidation:rule="self.provider != 'generic' || !has(self.serviceAccountName)", message="ServiceAccountName is not supported for the 'generic' Bucket provider"
// +kubebuilder:validation:XValidation:rule="!has(self.secretRef) || !has(self.serviceAccountName)", message="cannot set both .spec.secretRef and .spec.serviceAccountName"
type BucketSpec struct {
	// Provider of the object storage bucket: 'generic' (the default, any
	// S3-compatible storage), 'aws', 'gcp' or 'azure'. lacre refuses
	// 'gcp' and 'azure' with Ready=False, Stalled=True naming
	// spec.provider.
	// +kubebuilder:validation:Enum=generic;aws;gcp;azure
	// +kubebuilder:default:=generic
	// +optional
	Provider string `json:"provider,omitempty"`

	// BucketName is the name of the object storage bucket.
	// +required
	BucketName string `json:"bucketName"`

	// Endpoint is the object storage address (host[:port]) the BucketName
	// is located at.
	// +required
	Endpoint string `json:"endpoint"`

	// STS specifies the Security Token Service to fetch temporary
	// credentials from; only for the 'aws' and 'generic' providers.
	// lacre refuses it with Ready=False, Stalled=True naming spec.sts.
	// +optional
	STS *BucketSTSSpec `json:"sts,omitempty"`

	// Insecure allows connecting to a non-TLS HTTP Endpoint.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// Region of the Endpoint where the BucketName is located in.
	// +optional
	Region string `json:"region,omitempty"`

	// Prefix to use for server-side filtering of files in the Bucket.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// SecretRef specifies the Secret containing authentication credentials
	// for the Bucket: 'accesskey' and 'secretkey'.
	// +optional
	SecretRef *meta.LocalObjectReference `json:"secretRef,omitempty"`

	// ServiceAccountName is the Kubernetes ServiceAccount used to
	// authenticate to the bucket (workload identity); only for the 'gcp'
	// and 'aws' providers. lacre refuses it with Ready=False,
	// Stalled=True naming spec.serviceAccountName.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// CertSecretRef names a Secret (type Opaque or kubernetes.io/tls) with
	// a PEM client certificate and key (tls.crt, tls.key) and/or a PEM CA
	// certificate (ca.crt) for the connection to the bucket; only for the
	// 'generic' provider.
	// +optional
	CertSecretRef *meta.LocalObjectReference `json:"certSecretRef,omitempty"`

	// ProxySecretRef specifies the Secret containing the proxy
	// configuration (address, username, password) to use while
	// communicating with the Bucket server.
	// +optional
	ProxySecretRef *meta.LocalObjectReference `json:"proxySecretRef,omitempty"`

	// Interval at which the Bucket Endpoint is checked for updates.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +required
	Interval metav1.Duration `json:"interval"`

	// Timeout for fetch operations, defaults to 60s.
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Ignore overrides the set of excluded patterns in the .sourceignore
	// format (which is the same as .gitignore); the patterns are added to
	// those of the bucket's .sourceignore object and take precedence.
	// +optional
	Ignore *string `json:"ignore,omitempty"`

	// Suspend tells the controller to suspend the reconciliation of this
	// Bucket.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// BucketSTSSpec specifies a Security Token Service to fetch temporary
// credentials from.
type BucketSTSSpec struct {
	// Provider of the Security Token Service.
	// +kubebuilder:validation:Enum=aws;ldap
	// +required
	Provider string `json:"provider"`

	// Endpoint is the HTTP/S endpoint of the Security Token Service.
	// +required
	// +kubebuilder:validation:Pattern="^(http|https)://.*$"
	Endpoint string `json:"endpoint"`

	// SecretRef specifies the Secret with 'username' and 'password' for the
	// STS endpoint; only for the 'ldap' provider.
	// +optional
	SecretRef *meta.LocalObjectReference `json:"secretRef,omitempty"`

	// CertSecretRef names a Secret with a PEM client certificate and key
	// (tls.crt, tls.key) and/or a CA certificate (ca.crt) for the STS
	// endpoint; only for the 'ldap' provider.
	// +optional
	CertSecretRef *meta.LocalObjectReference `json:"certSecretRef,omitempty"`
}

// BucketStatus records the observed state of a Bucket.
type BucketStatus struct {
	// ObservedGeneration is the last observed generation of the Bucket.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions holds the conditions for the Bucket.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// URL is the dynamic fetch link for the latest Artifact, on a best
	// effort basis; use Artifact.
	// +optional
	URL string `json:"url,omitempty"`

	// Artifact represents the last successful Bucket reconciliation.
	// +optional
	Artifact *meta.Artifact `json:"artifact,omitempty"`

	// ObservedIgnore is the observed exclusion patterns used for
	// constructing the source artifact.
	// +optional
	ObservedIgnore *string `json:"observedIgnore,omitempty"`

	meta.ReconcileRequestStatus `json:",inline"`
}

// GetConditions returns the status conditions.
func (in *Bucket) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions sets the status conditions.
func (in *Bucket) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// GetArtifact returns the latest Artifact, or nil.
func (in *Bucket) GetArtifact() *meta.Artifact { return in.Status.Artifact }

// GetRequeueAfter returns the interval.
func (in *Bucket) GetRequeueAfter() time.Duration { return in.Spec.Interval.Duration }

// GetProvider returns spec.provider, 'generic' when empty.
func (in *Bucket) GetProvider() string {
	if in.Spec.Provider == "" {
		return BucketProviderGeneric
	}
	return in.Spec.Provider
}

// GetTimeout returns the fetch timeout, 60s by default.
func (in *Bucket) GetTimeout() time.Duration {
	if in.Spec.Timeout != nil && in.Spec.Timeout.Duration > 0 {
		return in.Spec.Timeout.Duration
	}
	return 60 * time.Second
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all;fluxcd;fluxcd-sources
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp",description=""
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description=""
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].message",description=""
// +kubebuilder:metadata:labels="kustomize.toolkit.fluxcd.io/substitute=disabled"

// Bucket is the Schema for the buckets API.
type Bucket struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BucketSpec `json:"spec,omitempty"`
	// +kubebuilder:default={"observedGeneration":-1}
	Status BucketStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// BucketList contains a list of Bucket objects.
type BucketList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Bucket `json:"items"`
}
