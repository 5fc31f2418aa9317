package ssa

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func entry(manager string, op metav1.ManagedFieldsOperationType, sub, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: sub, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

// TestMergeManagers: kubectl's entries (by prefix and operation) are
// merged into the controller's apply entry; other managers, subresources
// and a controller that is the only manager are left as they are.
func TestMergeManagers(t *testing.T) {
	const own = "kustomize-controller"
	apply, update := metav1.ManagedFieldsOperationApply, metav1.ManagedFieldsOperationUpdate
	in := []metav1.ManagedFieldsEntry{
		entry("kubectl-client-side-apply", update, "", `{"f:data":{"f:a":{}}}`),
		entry("hpa", update, "", `{"f:data":{"f:h":{}}}`),
		entry(own, apply, "", `{"f:data":{"f:b":{}}}`),
		entry("kubectl", apply, "", `{"f:data":{"f:c":{}}}`),
		entry("kubectl-edit", update, "status", `{"f:status":{}}`),
		entry("before-first-apply", update, "", `{"f:data":{"f:d":{}}}`),
		entry("custom-tool", update, "", `{"f:data":{"f:e":{}}}`),
	}
	out, changed, err := mergeManagers(in, own, takenOver(own, []string{"custom"}))
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	var got []string
	for _, e := range out {
		got = append(got, e.Manager+"/"+string(e.Operation)+"/"+e.Subresource)
	}
	want := "hpa/Update/ kubectl-edit/Update/status " + own + "/Apply/"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("entries %q, want %q", s, want)
	}
	if f := string(out[2].FieldsV1.Raw); f != `{"f:data":{"f:a":{},"f:b":{},"f:c":{},"f:d":{},"f:e":{}}}` {
		t.Errorf("merged fields %s", f)
	}
	if _, changed, _ := mergeManagers(out, own, takenOver(own, nil)); changed {
		t.Error("a second takeover changed something")
	}
	// No entry of the controller yet: the first taken-over one becomes it.
	out, _, _ = mergeManagers([]metav1.ManagedFieldsEntry{entry("kubectl-client-side-apply", update, "", `{"f:data":{}}`)}, own, takenOver(own, nil))
	if len(out) != 1 || out[0].Manager != own || out[0].Operation != apply {
		t.Errorf("renamed entry %+v", out)
	}
}

// TestDropInvalidCABundle: a CRD's placeholder CA bundle is dropped, a
// real one kept, other kinds untouched.
func TestDropInvalidCABundle(t *testing.T) {
	const truncatedCA = "-----BEGIN CERTIFICATE-----\nMIIBeTCCAR+gAwIBAgIUQ3m6Yw1d0cT6Wc4b6o5kB6m6mYkwCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n"
	crd := func(bundle string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}}
		_ = unstructured.SetNestedField(u.Object, bundle, caBundlePath...)
		return u
	}
	for _, c := range []struct {
		u    *unstructured.Unstructured
		kept bool
	}{
		{crd("Cg=="), false},
		{crd("not base64!"), false},
		{crd(base64.StdEncoding.EncodeToString([]byte(truncatedCA))), false},
		{crd(base64.StdEncoding.EncodeToString(testCA(t))), true},
	} {
		dropInvalidCABundle(c.u)
		if _, ok, _ := unstructured.NestedString(c.u.Object, caBundlePath...); ok != c.kept {
			t.Errorf("kept=%v, want %v", ok, c.kept)
		}
	}
	other := crd("Cg==")
	other.SetKind("Widget")
	dropInvalidCABundle(other)
	if _, ok, _ := unstructured.NestedString(other.Object, caBundlePath...); !ok {
		t.Error("changed another kind")
	}
}

// testCA is a self-signed certificate, PEM-encoded.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestNormalize: Flux's normalization before apply.
func TestNormalize(t *testing.T) {
	sec := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"data":       map[string]any{"a": "b2xk", "k": "aw=="},
		"stringData": map[string]any{"a": "new"},
		"status":     map[string]any{},
	}}
	normalize(sec)
	if _, ok := sec.Object["stringData"]; ok || sec.Object["data"].(map[string]any)["a"] != "bmV3" || sec.Object["status"] != nil {
		t.Errorf("secret %v", sec.Object)
	}
	dep := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "c", "ports": []any{map[string]any{"containerPort": int64(80)}, map[string]any{"containerPort": int64(53), "protocol": "UDP"}}},
		}}}},
	}}
	normalize(dep)
	ports, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	p := ports[0].(map[string]any)["ports"].([]any)
	if p[0].(map[string]any)["protocol"] != "TCP" || p[1].(map[string]any)["protocol"] != "UDP" {
		t.Errorf("ports %v", p)
	}
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service", "spec": map[string]any{"ports": []any{map[string]any{"port": int64(80)}}},
	}}
	normalize(svc)
	if sp, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports"); sp[0].(map[string]any)["protocol"] != "TCP" {
		t.Errorf("service ports %v", sp)
	}
}
