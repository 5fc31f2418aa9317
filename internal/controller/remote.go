package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/redact"
)

// maxKubeConfigSize bounds the kubeconfig read from a Secret.
const maxKubeConfigSize = 1 << 20

// KubeConfigOptions are Flux's --insecure-kubeconfig-exec and
// --insecure-kubeconfig-tls.
type KubeConfigOptions struct {
	// InsecureExec allows exec credential plugins in kubeconfigs.
	InsecureExec bool
	// InsecureTLS allows insecure-skip-tls-verify in kubeconfigs.
	InsecureTLS bool
}

// errRefused marks a kubeconfig refused for what it holds (Stalled).
type errRefused struct{ msg string }

func (e errRefused) Error() string { return e.msg }

// remoteConfig is the rest.Config of spec.kubeConfig.secretRef: the
// Secret's key (default `value`, then `value.yaml`) parsed as a
// kubeconfig, keeping what Flux keeps (server, TLS, basic auth, token;
// exec plugins and insecure TLS only with the matching option). Where Flux
// drops a plugin or the insecure flag silently, lacre refuses the
// kubeconfig naming it.
func (r *KustomizationReconciler) remoteConfig(ctx context.Context, obj *kustomizev1.Kustomization) (*rest.Config, error) {
	ref := obj.Spec.KubeConfig.SecretRef
	sec := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: ref.Name}, sec); err != nil {
		return nil, fmt.Errorf("reading the kubeconfig Secret %q: %s", ref.Name, redact.Error(err))
	}
	var data []byte
	switch {
	case ref.Key != "":
		if data = sec.Data[ref.Key]; data == nil {
			return nil, fmt.Errorf("KubeConfig secret %q does not contain a %q key with a kubeconfig", ref.Name, ref.Key)
		}
	case sec.Data["value"] != nil:
		data = sec.Data["value"]
	case sec.Data["value.yaml"] != nil:
		data = sec.Data["value.yaml"]
	default:
		return nil, fmt.Errorf("KubeConfig secret %q does not contain a 'value' key with a kubeconfig", ref.Name)
	}
	if len(data) > maxKubeConfigSize {
		return nil, errRefused{fmt.Sprintf("spec.kubeConfig.secretRef: the kubeconfig in Secret %q is over %d bytes", ref.Name, maxKubeConfigSize)}
	}
	in, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		// The parse error may quote the file: say only that it failed.
		return nil, errRefused{fmt.Sprintf("spec.kubeConfig.secretRef: Secret %q does not hold a valid kubeconfig", ref.Name)}
	}
	switch {
	case in.ExecProvider != nil && !r.KubeConfig.InsecureExec:
		return nil, errRefused{"spec.kubeConfig.secretRef: the kubeconfig uses an exec credential plugin; allowed only with --insecure-kubeconfig-exec"}
	case in.AuthProvider != nil:
		return nil, errRefused{"spec.kubeConfig.secretRef: the kubeconfig uses an auth-provider plugin, which is not supported (as in Flux)"}
	case in.BearerTokenFile != "":
		return nil, errRefused{"spec.kubeConfig.secretRef: the kubeconfig reads a token file, which is not supported (as in Flux)"}
	case in.Insecure && !r.KubeConfig.InsecureTLS:
		return nil, errRefused{"spec.kubeConfig.secretRef: the kubeconfig disables TLS verification; allowed only with --insecure-kubeconfig-tls"}
	}
	out := &rest.Config{
		Host: in.Host, APIPath: in.APIPath, DisableCompression: in.DisableCompression,
		TLSClientConfig: rest.TLSClientConfig{ServerName: in.ServerName, CAData: in.CAData, CertData: in.CertData, KeyData: in.KeyData, Insecure: in.Insecure},
		Proxy:           in.Proxy,
		Username:        in.Username, Password: in.Password, BearerToken: in.BearerToken,
		QPS: r.Config.QPS, Burst: r.Config.Burst,
	}
	if r.KubeConfig.InsecureExec {
		out.ExecProvider = in.ExecProvider
	}
	return out, nil
}
