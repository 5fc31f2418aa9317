package controller

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
)

// bucketRefused sets each Bucket field (or value) the controller refuses.
var bucketRefused = map[string]func(*sourcev1.BucketSpec){
	"spec.provider": func(s *sourcev1.BucketSpec) { s.Provider = sourcev1.BucketProviderAzure },
	"spec.sts": func(s *sourcev1.BucketSpec) {
		s.STS = &sourcev1.BucketSTSSpec{Provider: sourcev1.STSProviderLDAP, Endpoint: "https://sts.example"}
	},
	"spec.serviceAccountName": func(s *sourcev1.BucketSpec) {
		s.Provider, s.ServiceAccountName = sourcev1.BucketProviderAmazon, "s3-reader"
	},
}

// bucketHandled says how the controller handles each field of Flux's
// Bucket v1 schema: "read", "refused" (bucketRefused; for spec.provider,
// the values gcp and azure) or "written" (status).
var bucketHandled = map[string]string{
	"spec.bucketName": "read", "spec.endpoint": "read", "spec.prefix": "read", "spec.region": "read",
	"spec.insecure": "read", "spec.secretRef": "read", "spec.provider": "refused", "spec.sts": "refused",
	"spec.certSecretRef": "read", "spec.proxySecretRef": "read", "spec.ignore": "read", "spec.interval": "read",
	"spec.timeout": "read", "spec.suspend": "read", "spec.serviceAccountName": "refused", "status": "written",
}

// TestBucketFieldsHandled: each field of Flux's Bucket v1 schema is read
// by the controller or refused with a reason naming it.
func TestBucketFieldsHandled(t *testing.T) {
	f, err := os.Open("../../api/testdata/flux-bucket-v1-fields.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || p == "spec" || strings.HasPrefix(p, "#") {
			continue
		}
		if bucketHandled[howKey(bucketHandled, p)] == "" {
			t.Errorf("%s: not in the handled table", p)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for field, set := range bucketRefused {
		b := newBucket("ns", "x", "127.0.0.1:1", "")
		set(&b.Spec)
		if msg := bucketUnsupportedField(b); !strings.HasPrefix(msg, field) {
			t.Errorf("%s: not refused with a reason naming it: %q", field, msg)
		}
	}
	for _, p := range []string{"", sourcev1.BucketProviderGeneric, sourcev1.BucketProviderAmazon} {
		b := newBucket("ns", "x", "127.0.0.1:1", "s3")
		b.Spec.Provider, b.Spec.CertSecretRef, b.Spec.ProxySecretRef = p, &meta.LocalObjectReference{Name: "tls"}, &meta.LocalObjectReference{Name: "proxy"}
		if msg := bucketUnsupportedField(b); msg != "" {
			t.Errorf("provider %q refused: %s", p, msg)
		}
	}
}
