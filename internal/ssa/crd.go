package ssa

import (
	"crypto/x509"
	"encoding/base64"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// caBundlePath is where a CRD's conversion webhook keeps its CA bundle.
var caBundlePath = []string{"spec", "conversion", "webhook", "clientConfig", "caBundle"}

// dropInvalidCABundle removes a CRD's conversion webhook CA bundle that
// holds no PEM certificate (often a placeholder a CA injector fills in
// later), which the API server refuses since Kubernetes 1.31; Flux does
// the same before applying.
func dropInvalidCABundle(u *unstructured.Unstructured) {
	if !strings.EqualFold(u.GetKind(), "CustomResourceDefinition") || !strings.HasPrefix(u.GetAPIVersion(), "apiextensions.k8s.io/") {
		return
	}
	b64, ok, err := unstructured.NestedString(u.Object, caBundlePath...)
	if err != nil || !ok || b64 == "" {
		return
	}
	if pem, err := base64.StdEncoding.DecodeString(b64); err == nil && x509.NewCertPool().AppendCertsFromPEM(pem) {
		return
	}
	unstructured.RemoveNestedField(u.Object, caBundlePath...)
}
