package controller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"testing/fstest"
	"time"

	gcrname "github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/internal/source"
	"github.com/lacre/lacre/internal/source/oci"
)

// unsupportedOCIField names the first field of obj lacre cannot honour
// and why ("" when all can be).
func unsupportedOCIField(obj *sourcev1.OCIRepository) string {
	switch p := obj.Spec.Provider; p {
	case "", sourcev1.GenericOCIProvider:
	default:
		return fmt.Sprintf("spec.provider %q is not supported: lacre-cluster has no %s workload identity; use provider 'generic' with a secretRef (dockerconfigjson)", p, p)
	}
	if v := obj.Spec.Verify; v != nil {
		switch {
		case v.Provider == sourcev1.NotationVerificationProvider:
			return "spec.verify.provider \"notation\" is not supported: lacre-cluster verifies cosign key signatures only"
		case v.SecretRef == nil:
			return "spec.verify.secretRef is required: cosign keyless verification (Fulcio/Rekor) is not supported; sign with a key and give its public key (*.pub)"
		case len(v.MatchOIDCIdentity) > 0:
			return "spec.verify.matchOIDCIdentity is not supported: cosign keyless verification is not supported"
		case v.TrustedRootSecretRef != nil:
			return "spec.verify.trustedRootSecretRef is not supported: cosign keyless verification is not supported"
		}
	}
	return ""
}

// secretData reads the Secret name in obj's namespace.
func (r *OCIRepositoryReconciler) secretData(ctx context.Context, ns, name string) (map[string][]byte, error) {
	sec := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sec); err != nil {
		return nil, fmt.Errorf("failed to get secret '%s/%s': %s", ns, name, redact.Reason(err))
	}
	return sec.Data, nil
}

// remoteOptions builds the registry options from secretRef, the service
// account's imagePullSecrets, certSecretRef, proxySecretRef and insecure;
// it also returns the secret values to scrub from messages.
func (r *OCIRepositoryReconciler) remoteOptions(ctx context.Context, obj *sourcev1.OCIRepository) (oci.Options, []string, *ociFailure) {
	authFail := func(err error) *ociFailure {
		return &ociFailure{cond: sourcev1.FetchFailedCondition, reason: sourcev1.AuthenticationFailedReason, msg: err.Error()}
	}
	kc := oci.Keychain{}
	var pullSecrets []string
	if ref := obj.Spec.SecretRef; ref != nil {
		pullSecrets = append(pullSecrets, ref.Name)
	}
	if sa := obj.Spec.ServiceAccountName; sa != "" {
		acct := &corev1.ServiceAccount{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: sa}, acct); err != nil {
			return oci.Options{}, nil, authFail(fmt.Errorf("failed to get service account '%s/%s': %s", obj.Namespace, sa, redact.Reason(err)))
		}
		for _, s := range acct.ImagePullSecrets {
			pullSecrets = append(pullSecrets, s.Name)
		}
	}
	for _, name := range pullSecrets {
		data, err := r.secretData(ctx, obj.Namespace, name)
		if err == nil {
			err = kc.Add(data)
		}
		if err != nil {
			return oci.Options{}, nil, authFail(fmt.Errorf("secret '%s/%s': %w", obj.Namespace, name, err))
		}
	}
	var certData map[string][]byte
	if ref := obj.Spec.CertSecretRef; ref != nil {
		data, err := r.secretData(ctx, obj.Namespace, ref.Name)
		if err != nil {
			return oci.Options{}, nil, authFail(err)
		}
		certData = data
	}
	var proxy *url.URL
	secrets := kc.Values()
	if ref := obj.Spec.ProxySecretRef; ref != nil {
		data, err := r.secretData(ctx, obj.Namespace, ref.Name)
		var po struct{ url, user, pass string }
		if err == nil {
			p, perr := source.ProxyFromSecret(data)
			po.url, po.user, po.pass, err = p.URL, p.Username, p.Password, perr
		}
		if err != nil {
			return oci.Options{}, nil, authFail(fmt.Errorf("failed to configure proxy options: secret '%s/%s': %v", obj.Namespace, ref.Name, err))
		}
		proxy, _ = url.Parse(po.url)
		if po.user != "" {
			proxy.User = url.UserPassword(po.user, po.pass)
		}
		secrets = append(secrets, po.pass)
	}
	transport, err := oci.Transport(certData, proxy)
	if err != nil {
		return oci.Options{}, nil, authFail(fmt.Errorf("secret '%s/%s': %w", obj.Namespace, obj.Spec.CertSecretRef.Name, err))
	}
	return oci.Options{Keychain: kc, Transport: transport, Insecure: obj.Spec.Insecure}, secrets, nil
}

// verify checks the cosign signature of digest with spec.verify's keys
// when the revision, the generation or a failed verification asks for it
// (Flux's rule), setting SourceVerified.
func (r *OCIRepositoryReconciler) verify(ctx context.Context, obj *sourcev1.OCIRepository, repo gcrname.Repository, digest, revision string, opts oci.Options) *ociFailure {
	conds, gen := &obj.Status.Conditions, obj.Generation
	v := obj.Spec.Verify
	if v == nil {
		apimeta.RemoveStatusCondition(conds, sourcev1.SourceVerifiedCondition)
		return nil
	}
	c := apimeta.FindStatusCondition(*conds, sourcev1.SourceVerifiedCondition)
	if art := obj.Status.Artifact; art != nil && art.Revision == revision && c != nil && c.ObservedGeneration == gen && c.Status == metav1.ConditionTrue {
		return nil
	}
	data, err := r.secretData(ctx, obj.Namespace, v.SecretRef.Name)
	if err == nil {
		keys, kerr := oci.ParsePublicKeys(data)
		err = kerr
		if err == nil {
			err = oci.Verify(ctx, repo, digest, keys, opts)
		}
	}
	if err != nil {
		msg := fmt.Sprintf("failed to verify the signature using provider '%s': %s", v.Provider, err)
		setCondition(conds, gen, sourcev1.SourceVerifiedCondition, metav1.ConditionFalse, verificationErrorReason, msg)
		return &ociFailure{reason: verificationErrorReason, msg: msg}
	}
	setCondition(conds, gen, sourcev1.SourceVerifiedCondition, metav1.ConditionTrue, meta.SucceededReason, "verified signature of revision "+revision)
	return nil
}

// jitter adds up to 5% of d at random, as the source controllers do.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Float64()*0.05*float64(d))
}

// retainOr is n, or 2 (the older artifacts kept) when 0.
func retainOr(n int) int {
	if n == 0 {
		return 2
	}
	return n
}

// mapFS presents unpacked files as a file system for artifact.Build.
func mapFS(files artifact.Files) fstest.MapFS {
	m := make(fstest.MapFS, len(files))
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: data, Mode: 0o600}
	}
	return m
}
