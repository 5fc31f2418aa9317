package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/internal/source"
	"github.com/lacre/lacre/internal/source/bucket"
)

// bucketUnsupportedField names the first field of obj lacre cannot
// honour and why, or returns "" when every field set can be honoured.
func bucketUnsupportedField(obj *sourcev1.Bucket) string {
	switch p := obj.GetProvider(); p {
	case sourcev1.BucketProviderGeneric, sourcev1.BucketProviderAmazon:
	case sourcev1.BucketProviderGoogle:
		return fmt.Sprintf("spec.provider %q is not supported: lacre-cluster has no Google Cloud Storage client; use provider 'generic' with endpoint storage.googleapis.com and HMAC keys (accesskey, secretkey) in a secretRef", p)
	case sourcev1.BucketProviderAzure:
		return fmt.Sprintf("spec.provider %q is not supported: lacre-cluster has no Azure Blob Storage client", p)
	default:
		return fmt.Sprintf("spec.provider %q is not supported", p)
	}
	switch {
	case obj.Spec.STS != nil:
		return "spec.sts is not supported: lacre-cluster does not fetch temporary credentials from a Security Token Service; use a secretRef (accesskey, secretkey)"
	case obj.Spec.ServiceAccountName != "":
		return "spec.serviceAccountName is not supported: lacre-cluster has no workload identity; use a secretRef, or provider 'aws' without one (the AWS SDK's default chain of the controller)"
	}
	return ""
}

// bucketClient builds the client of obj from its Secrets (secretRef,
// certSecretRef, proxySecretRef) as Flux does; any failure is an
// authentication failure. It also returns the secret values an error
// could quote, for redaction.
func (r *BucketReconciler) bucketClient(ctx context.Context, obj *sourcev1.Bucket) (*bucket.Client, []string, error) {
	cfg := bucket.Config{
		Endpoint: obj.Spec.Endpoint, BucketName: obj.Spec.BucketName, Region: obj.Spec.Region,
		Prefix: obj.Spec.Prefix, Insecure: obj.Spec.Insecure, Ignore: obj.Spec.Ignore,
	}
	var secrets []string
	if ref := obj.Spec.SecretRef; ref != nil {
		data, err := r.secretData(ctx, obj.Namespace, ref)
		if err != nil {
			return nil, nil, err
		}
		if cfg.Credentials, err = bucket.CredentialsFromSecret(ref.Name, data); err != nil {
			return nil, nil, err
		}
		if c := cfg.Credentials; c != nil {
			secrets = append(secrets, c.SecretKey)
		}
	} else if obj.GetProvider() == sourcev1.BucketProviderAmazon {
		creds, err := bucket.AWSCredentials(ctx, obj.Spec.Region)
		if err != nil {
			return nil, nil, err
		}
		cfg.Credentials = creds
		secrets = append(secrets, creds.SecretKey, creds.SessionToken)
	}
	if ref := obj.Spec.ProxySecretRef; ref != nil {
		u, pw, err := r.bucketProxy(ctx, obj.Namespace, ref)
		if err != nil {
			return nil, nil, err
		}
		cfg.Proxy, secrets = u, append(secrets, pw)
	}
	if ref := obj.Spec.CertSecretRef; ref != nil {
		data, err := r.secretData(ctx, obj.Namespace, ref)
		var tc *tls.Config
		if err == nil {
			tc, err = source.TLSFromSecret(data)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("failed to get TLS config: %w", err)
		}
		cfg.TLS = tc
	}
	cl, err := bucket.New(cfg)
	return cl, secrets, err
}

// secretData reads the data of a Secret in namespace.
func (r *BucketReconciler) secretData(ctx context.Context, namespace string, ref *meta.LocalObjectReference) (map[string][]byte, error) {
	sec := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, sec); err != nil {
		return nil, fmt.Errorf("failed to get secret '%s/%s': %v", namespace, ref.Name, redact.Reason(err))
	}
	return sec.Data, nil
}

// bucketProxy reads a proxySecretRef Secret with the GitRepository's
// rules (source.ProxyFromSecret) and returns the proxy URL with its
// credentials, and the password.
func (r *BucketReconciler) bucketProxy(ctx context.Context, namespace string, ref *meta.LocalObjectReference) (*url.URL, string, error) {
	data, err := r.secretData(ctx, namespace, ref)
	if err != nil {
		return nil, "", fmt.Errorf("failed to get proxy URL: %w", err)
	}
	p, err := source.ProxyFromSecret(data)
	if err != nil {
		return nil, "", fmt.Errorf("failed to get proxy URL: secret '%s/%s': %w", namespace, ref.Name, err)
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, "", fmt.Errorf("failed to get proxy URL: secret '%s/%s': %w", namespace, ref.Name, err)
	}
	switch {
	case p.Username != "" && p.Password != "":
		u.User = url.UserPassword(p.Username, p.Password)
	case p.Username != "":
		u.User = url.User(p.Username)
	}
	return u, p.Password, nil
}

// redactBucket is err's text without the secret values it may quote.
func redactBucket(err error, secrets []string) string {
	return redact.Values(err.Error(), secrets...)
}
