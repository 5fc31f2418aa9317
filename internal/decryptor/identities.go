package decryptor

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/redact"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/awskms"
	"github.com/lacre/lacre/keys/azkv"
	"github.com/lacre/lacre/keys/gcpkms"
)

// A Decryptor collects the keys of Kustomizations, behind a data-key
// cache.
type Decryptor struct {
	Options
	// Reader reads Secrets and Namespaces (uncached: the controller does
	// not watch Secrets).
	Reader client.Reader
	// Cache remembers unwrapped data keys, scoped by the Secrets' UIDs and
	// resourceVersions: a tenant never gets a key it could not unwrap
	// itself, and a changed Secret starts afresh.
	Cache *keys.Cache
	// OnUnwrap, when set, is called for every real unwrap (cache miss)
	// with the stanza type.
	OnUnwrap func(typ string)
}

// Identities collects the keys obj may use: its decryption Secret (in
// its own namespace), the default age Secret when its namespace selector
// matches, and the ambient cloud identity when the operator allows it.
func (d *Decryptor) Identities(ctx context.Context, obj *kustomizev1.Kustomization) ([]keys.Identity, error) {
	var ids []keys.Identity
	var scope []string
	ref := obj.Spec.Decryption.SecretRef
	if ref != nil {
		sec := &corev1.Secret{}
		if err := d.Reader.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, sec); err != nil {
			return nil, fmt.Errorf("cannot get decryption Secret '%s/%s': %s", obj.Namespace, ref.Name, redact.Reason(err))
		}
		// A Secret with no entry of the contract gives no key (as in
		// Flux): a build with nothing to decrypt still succeeds.
		got, err := d.SecretIdentities(sec)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
		scope = append(scope, string(sec.UID)+"/"+sec.ResourceVersion)
	}
	if ref == nil || !d.DefaultAgeFallbackOnly {
		got, s, err := d.defaultAge(ctx, obj.Namespace)
		if err != nil {
			return nil, err
		}
		if s != "" {
			ids = append(ids, got...)
			scope = append(scope, s)
		}
	}
	if d.AmbientCloudCredentials {
		ids = append(ids, awskms.NewIdentity(d.AWS), gcpkms.NewIdentity(d.GCP), azkv.NewIdentity(d.Azure))
		scope = append(scope, "ambient")
	}
	return d.Cache.Wrap(strings.Join(scope, "+"), ids, d.OnUnwrap), nil
}

// defaultAge returns the default age Secret's keys and cache scope when
// it applies to namespace ns ("" scope when it does not).
func (d *Decryptor) defaultAge(ctx context.Context, ns string) ([]keys.Identity, string, error) {
	if d.DefaultAgeSecret.Name == "" || d.DefaultAgeNamespaces == nil {
		return nil, "", nil
	}
	nsObj := &corev1.Namespace{}
	if err := d.Reader.Get(ctx, types.NamespacedName{Name: ns}, nsObj); err != nil {
		return nil, "", fmt.Errorf("cannot get namespace %q: %s", ns, redact.Reason(err))
	}
	if !d.DefaultAgeNamespaces.Matches(labels.Set(nsObj.Labels)) {
		return nil, "", nil
	}
	sec := &corev1.Secret{}
	if err := d.Reader.Get(ctx, d.DefaultAgeSecret, sec); err != nil {
		return nil, "", fmt.Errorf("cannot get the default age Secret '%s': %s", d.DefaultAgeSecret, redact.Reason(err))
	}
	ids, err := d.defaultAgeIdentities(sec.Data)
	if err != nil {
		return nil, "", err
	}
	return ids, "default:" + string(sec.UID) + "/" + sec.ResourceVersion, nil
}
