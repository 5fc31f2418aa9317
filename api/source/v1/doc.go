// Package v1 contains the GitRepository and Bucket APIs, source.toolkit.fluxcd.io/v1,
// field-compatible with Flux's source-controller.
// +kubebuilder:object:generate=true
// +groupName=source.toolkit.fluxcd.io
package v1
