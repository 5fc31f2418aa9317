package v1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lacre/lacre/api/meta"
)

// GitRepositoryKind is the kind of GitRepository.
const GitRepositoryKind = "GitRepository"

// Condition types of a GitRepository besides Ready, Reconciling, Stalled.
const (
	ArtifactInStorageCondition      = "ArtifactInStorage"
	FetchFailedCondition            = "FetchFailed"
	ArtifactOutdatedCondition       = "ArtifactOutdated"
	StorageOperationFailedCondition = "StorageOperationFailed"
	BuildFailedCondition            = "BuildFailed"
	// SourceVerifiedCondition: the signature(s) of the Git object(s) verified.
	SourceVerifiedCondition = "SourceVerified"
)

// Reasons of GitRepository conditions.
const (
	GitOperationSucceedReason  = "GitOperationSucceeded"
	GitOperationFailedReason   = "GitOperationFailed"
	AuthenticationFailedReason = "AuthenticationFailed"
	ArtifactUpToDateReason     = "ArtifactUpToDate"
	NewRevisionReason          = "NewRevision"
	// NewArtifactReason is the reason of the event of a new artifact.
	NewArtifactReason            = "NewArtifact"
	StorageOperationFailedReason = "StorageOperationFailed"
	URLInvalidReason             = "URLInvalid"
	// ArtifactTooLargeReason: the checkout or its artifact exceeds the
	// controller's size limits (--max-artifact-size, --max-artifact-files).
	ArtifactTooLargeReason = "ArtifactTooLarge"
)

// GitRepositorySpec specifies the Git repository to fetch and how.
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountName) || (has(self.provider) && (self.provider == 'azure' || self.provider == 'aws'))",message="serviceAccountName can only be set when provider is 'azure' or 'aws'"
type GitRepositorySpec struct {
	// URL specifies the Git repository URL, it can be an HTTP/S or SSH address.
	// +kubebuilder:validation:Pattern="^(http|https|ssh)://.*$"
	// +required
	URL string `json:"url"`

	// SecretRef specifies the Secret containing authentication credentials:
	// username and password or bearerToken (and ca.crt) for HTTPS;
	// identity, known_hosts and optionally password for SSH.
	// +optional
	SecretRef *meta.LocalObjectReference `json:"secretRef,omitempty"`

	// Interval at which the GitRepository URL is checked for updates.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +required
	Interval metav1.Duration `json:"interval"`

	// Timeout for Git operations like cloning, defaults to 60s.
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Reference specifies the Git reference to resolve and monitor for
	// changes, defaults to the 'master' branch.
	// +optional
	Reference *GitRepositoryRef `json:"ref,omitempty"`

	// Suspend tells the controller to suspend the reconciliation of this
	// GitRepository.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Ignore overrides the set of excluded patterns in the .sourceignore
	// format (which is the same as .gitignore). If not provided, a default
	// will be used, consult the documentation for your version to find out
	// what those are.
	// +optional
	Ignore *string `json:"ignore,omitempty"`

	// Verification specifies the configuration to verify the Git commit
	// signature(s).
	// +optional
	Verification *GitRepositoryVerification `json:"verify,omitempty"`

	// ProxySecretRef specifies the Secret containing the proxy configuration
	// (address, username, password) to use while communicating with the Git
	// server.
	// +optional
	ProxySecretRef *meta.LocalObjectReference `json:"proxySecretRef,omitempty"`

	// --- issue 15 (i15git): provider, submodules, include, sparse checkout.

	// Provider used for authentication: 'generic' (the default, secretRef),
	// 'aws', 'azure' or 'github'. lacre refuses the cloud providers with
	// Ready=False, Stalled=True naming spec.provider.
	// +kubebuilder:validation:Enum=generic;aws;azure;github
	// +optional
	Provider string `json:"provider,omitempty"`

	// ServiceAccountName is the Kubernetes ServiceAccount used to
	// authenticate to the repository; only with provider 'azure' or 'aws'.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// RecurseSubmodules enables the initialization of all submodules within
	// the GitRepository as cloned from the URL, using their default settings.
	// +optional
	RecurseSubmodules bool `json:"recurseSubmodules,omitempty"`

	// Include specifies GitRepositories (in the same namespace) whose
	// Artifacts are included in the Artifact of this GitRepository.
	// +optional
	Include []GitRepositoryInclude `json:"include,omitempty"`

	// SparseCheckout specifies the directories to check out; when set only
	// these directories are in the Artifact.
	// +optional
	SparseCheckout []string `json:"sparseCheckout,omitempty"`
}

// Git authentication providers of spec.provider.
const (
	GitProviderGeneric = "generic"
	GitProviderAzure   = "azure"
	GitProviderGitHub  = "github"
	GitProviderAWS     = "aws"
)

// IncludeUnavailableCondition is True when an included GitRepository does
// not exist or has no Artifact (abnormal-true, absent otherwise).
const IncludeUnavailableCondition = "IncludeUnavailable"

// GitRepositoryInclude names a GitRepository whose Artifact (or a
// sub-directory of it) is copied into this GitRepository's Artifact.
type GitRepositoryInclude struct {
	// GitRepositoryRef specifies the GitRepository whose Artifact contents
	// are included.
	// +required
	GitRepositoryRef meta.LocalObjectReference `json:"repository"`

	// FromPath specifies the path to copy contents from, defaults to the
	// root of the Artifact.
	// +optional
	FromPath string `json:"fromPath,omitempty"`

	// ToPath specifies the path to copy contents to, defaults to the name
	// of the GitRepositoryRef.
	// +optional
	ToPath string `json:"toPath,omitempty"`
}

// GetFromPath returns FromPath.
func (in *GitRepositoryInclude) GetFromPath() string { return in.FromPath }

// GetToPath returns ToPath, or the name of the included GitRepository.
func (in *GitRepositoryInclude) GetToPath() string {
	if in.ToPath == "" {
		return in.GitRepositoryRef.Name
	}
	return in.ToPath
}

// GetProvider returns spec.provider, 'generic' when empty.
func (in *GitRepository) GetProvider() string {
	if in.Spec.Provider == "" {
		return GitProviderGeneric
	}
	return in.Spec.Provider
}

// GitVerificationMode specifies the verification mode for a Git repository.
type GitVerificationMode string

const (
	// ModeGitHEAD verifies the commit HEAD points to after checkout.
	ModeGitHEAD GitVerificationMode = "HEAD"
	// ModeGitTag verifies the annotated tag of the checkout reference.
	ModeGitTag GitVerificationMode = "Tag"
	// ModeGitTagAndHEAD verifies the tag and the commit it points to.
	ModeGitTagAndHEAD GitVerificationMode = "TagAndHEAD"
)

// GitRepositoryVerification specifies the Git commit signature verification
// strategy.
type GitRepositoryVerification struct {
	// Mode specifies which Git object(s) should be verified. "head" is the
	// same as "HEAD", kept for backwards compatibility.
	// +kubebuilder:validation:Enum=head;HEAD;Tag;TagAndHEAD
	// +kubebuilder:default:=HEAD
	// +optional
	Mode GitVerificationMode `json:"mode,omitempty"`

	// SecretRef specifies the Secret containing the public keys of trusted Git
	// authors: OpenPGP armored keys under keys ending in .asc (or any other
	// key), SSH authorized keys under keys ending in .sshpub.
	// +required
	SecretRef meta.LocalObjectReference `json:"secretRef"`
}

// GetMode returns the declared mode, HEAD for "head", "" or an unknown mode.
func (v *GitRepositoryVerification) GetMode() GitVerificationMode {
	switch v.Mode {
	case ModeGitTag, ModeGitTagAndHEAD:
		return v.Mode
	}
	return ModeGitHEAD
}

// VerifyHEAD reports whether the mode verifies the HEAD commit.
func (v *GitRepositoryVerification) VerifyHEAD() bool { return v.GetMode() != ModeGitTag }

// VerifyTag reports whether the mode verifies the tag object.
func (v *GitRepositoryVerification) VerifyTag() bool { return v.GetMode() != ModeGitHEAD }

// GitRepositoryRef specifies the Git reference to resolve and checkout.
// Precedence: commit, name, semver, tag, branch.
type GitRepositoryRef struct {
	// Branch to check out, defaults to 'master' if no other field is defined.
	// +optional
	Branch string `json:"branch,omitempty"`
	// Tag to check out, takes precedence over Branch.
	// +optional
	Tag string `json:"tag,omitempty"`
	// SemVer tag expression to check out, takes precedence over Tag.
	// +optional
	SemVer string `json:"semver,omitempty"`
	// Name of the reference to check out; takes precedence over Branch, Tag
	// and SemVer. It must be a valid Git reference such as refs/heads/main,
	// refs/tags/v0.1.0 or refs/pull/420/head.
	// +optional
	Name string `json:"name,omitempty"`
	// Commit SHA to check out, takes precedence over all reference fields.
	// With Branch, the commit must be on that branch.
	// +optional
	Commit string `json:"commit,omitempty"`
}

// GitRepositoryStatus records the observed state of a GitRepository.
type GitRepositoryStatus struct {
	// ObservedGeneration is the last observed generation of the GitRepository.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions holds the conditions for the GitRepository.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Artifact represents the last successful GitRepository reconciliation.
	// +optional
	Artifact *meta.Artifact `json:"artifact,omitempty"`

	// ObservedIgnore is the observed exclusion patterns used for
	// constructing the source artifact.
	// +optional
	ObservedIgnore *string `json:"observedIgnore,omitempty"`

	// SourceVerificationMode is the last used verification mode indicating
	// which Git object(s) have been verified.
	// +optional
	SourceVerificationMode *GitVerificationMode `json:"sourceVerificationMode,omitempty"`

	// --- issue 15 (i15git): observed include, submodules, sparse checkout.

	// IncludedArtifacts contains the last successfully included Artifacts
	// as instructed by spec.include.
	// +optional
	IncludedArtifacts []*meta.Artifact `json:"includedArtifacts,omitempty"`

	// ObservedRecurseSubmodules is the observed submodules configuration
	// used to produce the current Artifact.
	// +optional
	ObservedRecurseSubmodules bool `json:"observedRecurseSubmodules,omitempty"`

	// ObservedInclude is the observed list of GitRepository resources used
	// to produce the current Artifact.
	// +optional
	ObservedInclude []GitRepositoryInclude `json:"observedInclude,omitempty"`

	// ObservedSparseCheckout is the observed list of directories used to
	// produce the current Artifact.
	// +optional
	ObservedSparseCheckout []string `json:"observedSparseCheckout,omitempty"`

	meta.ReconcileRequestStatus `json:",inline"`
}

// GetConditions returns the status conditions.
func (in *GitRepository) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions sets the status conditions.
func (in *GitRepository) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// GetArtifact returns the latest Artifact, or nil.
func (in *GitRepository) GetArtifact() *meta.Artifact { return in.Status.Artifact }

// GetRequeueAfter returns the interval.
func (in *GitRepository) GetRequeueAfter() time.Duration { return in.Spec.Interval.Duration }

// GetTimeout returns the Git operation timeout, 60s by default.
func (in *GitRepository) GetTimeout() time.Duration {
	if in.Spec.Timeout != nil && in.Spec.Timeout.Duration > 0 {
		return in.Spec.Timeout.Duration
	}
	return 60 * time.Second
}

// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=gitrepo
// +kubebuilder:metadata:labels="kustomize.toolkit.fluxcd.io/substitute=disabled"
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description=""
// +kubebuilder:printcolumn:name="Status",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].message",description=""

// GitRepository is the Schema for the gitrepositories API.
type GitRepository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec GitRepositorySpec `json:"spec,omitempty"`
	// +kubebuilder:default={"observedGeneration":-1}
	Status GitRepositoryStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// GitRepositoryList contains a list of GitRepository objects.
type GitRepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitRepository `json:"items"`
}
