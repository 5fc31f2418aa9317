// Package v1 contains the Kustomization API, kustomize.toolkit.fluxcd.io/v1,
// field-compatible with Flux's kustomize-controller.
// +kubebuilder:object:generate=true
// +groupName=kustomize.toolkit.fluxcd.io
package v1
