package controller

import (
	"fmt"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
)

// UnsupportedFieldReason is the Ready=False, Stalled=True reason of a
// Kustomization using a Flux field this controller does not honour (yet):
// it is refused, never reconciled as if the field were absent.
const UnsupportedFieldReason = "UnsupportedField"

// unsupportedFields refuses a Kustomization setting a field the controller
// does not honour, naming the field and why.
func unsupportedFields(obj *kustomizev1.Kustomization) *failure {
	s := obj.Spec
	var field, why string
	switch {
	case s.KubeConfig != nil && s.KubeConfig.ConfigMapRef != nil:
		field, why = "spec.kubeConfig.configMapRef", "cloud-provider (workload identity) kubeconfigs are not supported"
	case len(s.Ignore) > 0:
		field, why = "spec.ignore", "drift-ignore rules are not supported yet"
	case s.IgnoreMissingComponents:
		field, why = "spec.ignoreMissingComponents", "not supported yet"
	case len(s.BuildMetadata) > 0:
		field, why = "spec.buildMetadata", "kustomize build metadata annotations are not supported yet"
	case s.Decryption != nil && s.Decryption.ServiceAccountName != "":
		field, why = "spec.decryption.serviceAccountName", "cloud KMS workload identity per service account is not supported"
	default:
		return nil
	}
	return &failure{reason: UnsupportedFieldReason, msg: fmt.Sprintf("%s: %s", field, why), stalled: true}
}
