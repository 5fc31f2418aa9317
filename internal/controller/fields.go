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
	case s.Decryption != nil && s.Decryption.ServiceAccountName != "":
		// Flux needs its ObjectLevelWorkloadIdentity feature gate for it
		// (off by default: Stalled, FeatureGateDisabled) and then gets
		// cloud KMS (and Vault) credentials for that ServiceAccount.
		field, why = "spec.decryption.serviceAccountName", "object-level workload identity (Flux's ObjectLevelWorkloadIdentity feature gate: cloud KMS credentials "+
			"for a ServiceAccount) is not supported; put the KMS credentials in the decryption Secret (spec.decryption.secretRef: "+
			"sops.aws-kms, sops.azure-kv, sops.gcp-kms, sops.vault-token) and remove spec.decryption.serviceAccountName"
	default:
		return nil
	}
	return &failure{reason: UnsupportedFieldReason, msg: fmt.Sprintf("%s: %s", field, why), stalled: true}
}
