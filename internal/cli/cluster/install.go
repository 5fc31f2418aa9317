package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/config/crd"
	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/controller"
)

// Names of the installed objects. They are fixed so that uninstall can find
// them again without labels selectors over every kind.
const (
	installName         = "lacre-controller"
	installReconciler   = "lacre-cluster-reconciler"
	installLeaderElect  = "lacre-leader-election"
	installSourceSvc    = "lacre-source"
	installNetPol       = "lacre-allow-artifacts-in-namespace"
	defaultInstallNS    = "lacre-system"
	defaultImageRepo    = "ghcr.io/lacre/lacre"
	artifactPort        = 9090
	metricsPort         = 8080
	healthPort          = 9440
	installFieldManager = "lacre"
	nonRootUID          = 65532
)

// installOptions select what `lacre install` renders.
type installOptions struct {
	namespace string
	image     string
}

func installLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "lacre",
		"app.kubernetes.io/component":  "controller",
		"app.kubernetes.io/part-of":    "lacre",
		"app.kubernetes.io/managed-by": "lacre",
	}
}

func selectorLabels() map[string]string { return map[string]string{"app": installName} }

func podLabels() map[string]string {
	l := installLabels()
	for k, v := range selectorLabels() {
		l[k] = v
	}
	return l
}

// crdObjects returns the embedded CRDs, in file name order, labelled as
// the rest of the install.
func crdObjects() ([]*unstructured.Unstructured, error) {
	out, err := crd.Objects()
	if err != nil {
		return nil, err
	}
	for _, u := range out {
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range installLabels() {
			if k != "app.kubernetes.io/component" {
				labels[k] = v
			}
		}
		u.SetLabels(labels)
	}
	return out, nil
}

// installObjects returns everything `lacre install` applies, in apply order:
// CRDs, Namespace, RBAC, Service, NetworkPolicy, Deployment.
func installObjects(o installOptions) ([]*unstructured.Unstructured, error) {
	objs, err := crdObjects()
	if err != nil {
		return nil, err
	}
	typed := []client.Object{&corev1.Namespace{ObjectMeta: installMeta(o.namespace, "")}}
	typed = append(typed, rbacObjects(o.namespace)...)
	typed = append(typed, networkObjects(o.namespace)...)
	typed = append(typed, deployment(o))
	scheme := controller.NewScheme()
	for _, t := range typed {
		u, err := toUnstructured(scheme, t)
		if err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
	return objs, nil
}

// installMeta names an installed object and labels it.
func installMeta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: installLabels()}
}

// rbacObjects are the service account, the ClusterRoles' bindings and the
// leader-election Role: ServiceAccount, ClusterRole, ClusterRoleBinding
// (x2), Role, RoleBinding.
func rbacObjects(ns string) []client.Object {
	meta := installMeta
	sa := &corev1.ServiceAccount{ObjectMeta: meta(installName, ns)}
	crudVerbs := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: meta(installName, ""),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"gitrepositories"}, Verbs: crudVerbs},
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"gitrepositories/status"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"gitrepositories/finalizers"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"ocirepositories"}, Verbs: crudVerbs},
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"ocirepositories/status"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"ocirepositories/finalizers"}, Verbs: []string{"update", "patch"}},
			// The Bucket controller.
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"buckets"}, Verbs: crudVerbs},
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"buckets/status"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"buckets/finalizers"}, Verbs: []string{"update", "patch"}},
			// The other kinds a Kustomization's sourceRef may name.
			{APIGroups: []string{sourcev1.GroupVersion.Group}, Resources: []string{"externalartifacts"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{kustomizev1.GroupVersion.Group}, Resources: []string{"kustomizations"}, Verbs: crudVerbs},
			{APIGroups: []string{kustomizev1.GroupVersion.Group}, Resources: []string{"kustomizations/status"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{kustomizev1.GroupVersion.Group}, Resources: []string{"kustomizations/finalizers"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets", "configmaps"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "impersonate"}},
		},
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: installName, Namespace: ns}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: meta(installName, ""),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: installName},
		Subjects:   subjects,
	}
	// As Flux's cluster-reconciler: the controller applies whatever the
	// Kustomizations hold unless they name a service account to impersonate.
	reconciler := &rbacv1.ClusterRoleBinding{
		ObjectMeta: meta(installReconciler, ""),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   subjects,
	}
	leRole := &rbacv1.Role{
		ObjectMeta: meta(installLeaderElect, ns),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: crudVerbs},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
	leBinding := &rbacv1.RoleBinding{
		ObjectMeta: meta(installLeaderElect, ns),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: installLeaderElect},
		Subjects:   subjects,
	}
	return []client.Object{sa, role, binding, reconciler, leRole, leBinding}
}

// networkObjects are the artifact Service and the NetworkPolicy that lets
// only the namespace's pods reach it.
func networkObjects(ns string) []client.Object {
	meta := installMeta
	svc := &corev1.Service{
		ObjectMeta: meta(installSourceSvc, ns),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selectorLabels(),
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
		},
	}
	tcp := corev1.ProtocolTCP
	port := func(p int) *intstr.IntOrString { v := intstr.FromInt32(int32(p)); return &v }
	netpol := &networkingv1.NetworkPolicy{
		ObjectMeta: meta(installNetPol, ns),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels()},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{
					// The artifact server is unauthenticated HTTP: only pods in
					// this namespace may reach it.
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: port(artifactPort)}},
				},
				{
					// Metrics and probes from anywhere (Prometheus, kubelet).
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: port(metricsPort)}, {Protocol: &tcp, Port: port(healthPort)}},
				},
			},
		},
	}
	return []client.Object{svc, netpol}
}

// deployment is the controller's Deployment.
func deployment(o installOptions) *appsv1.Deployment {
	ns, meta := o.namespace, installMeta
	no, yes := false, true
	uid := int64(nonRootUID)
	replicas := int32(1)
	grace := int64(10)
	memVolume := func(name, size string) corev1.Volume {
		q := resource.MustParse(size)
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &q}}}
	}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("healthz")}}}
	}
	return &appsv1.Deployment{
		ObjectMeta: meta(installName, ns),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels()},
			// One pod at a time: the artifacts live in that pod's memory.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels(), Annotations: map[string]string{
					"prometheus.io/scrape": "true",
					"prometheus.io/port":   fmt.Sprint(metricsPort),
				}},
				Spec: corev1.PodSpec{
					ServiceAccountName:            installName,
					TerminationGracePeriodSeconds: &grace,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   &yes,
						RunAsUser:      &uid,
						RunAsGroup:     &uid,
						FSGroup:        &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "manager",
						Image:           o.image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						// The image holds lacre and lacre-cluster; the
						// controller is in the companion, run directly.
						Command: []string{cliapp.Companion},
						Args: []string{
							"controller",
							"--leader-elect",
							"--leader-election-namespace=" + ns,
							fmt.Sprintf("--metrics-addr=:%d", metricsPort),
							fmt.Sprintf("--health-addr=:%d", healthPort),
							"--storage-path=/data",
							fmt.Sprintf("--storage-addr=:%d", artifactPort),
							fmt.Sprintf("--storage-adv-addr=%s.%s.svc.cluster.local.", installSourceSvc, ns),
							"--log-level=info",
						},
						Env: []corev1.EnvVar{
							{Name: "RUNTIME_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
							{Name: "TMPDIR", Value: "/tmp"},
						},
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: artifactPort, Protocol: corev1.ProtocolTCP},
							{Name: "http-metrics", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
							{Name: "healthz", ContainerPort: healthPort, Protocol: corev1.ProtocolTCP},
						},
						LivenessProbe:  probe("/healthz"),
						ReadinessProbe: probe("/readyz"),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
						},
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             &yes,
							RunAsUser:                &uid,
							ReadOnlyRootFilesystem:   &yes,
							AllowPrivilegeEscalation: &no,
							Privileged:               &no,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "tmp", MountPath: "/tmp"}},
					}},
					// Artifacts and scratch space are in memory: nothing
					// decrypted or fetched touches a node's disk.
					Volumes: []corev1.Volume{memVolume("data", "512Mi"), memVolume("tmp", "64Mi")},
				},
			},
		},
	}
}

func toUnstructured(scheme *runtime.Scheme, o client.Object) (*unstructured.Unstructured, error) {
	gvks, _, err := scheme.ObjectKinds(o)
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	clean(m)
	delete(m, "status")
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvks[0])
	return u, nil
}

// clean drops the null creationTimestamps the converter writes.
func clean(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			if k == "creationTimestamp" {
				delete(m, k)
			}
		case map[string]any:
			clean(v)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					clean(em)
				}
			}
		}
	}
}

func writeYAMLDocs(w io.Writer, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "---")
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) installCommand() *cobra.Command {
	var cf clusterFlags
	var image, version string
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the CRDs and the lacre controller in a cluster",
		Long: `Install lacre's CustomResourceDefinitions (GitRepository, Kustomization), its
namespace, service account and RBAC, the controller Deployment (leader
election, probes, metrics on :8080, artifacts served on :9090 from an in-memory
emptyDir), a Service for the artifact server and a NetworkPolicy that lets only
pods of the namespace reach it.

RBAC: the ClusterRole lacre-controller lists what the controllers themselves
use (their objects, status and finalizers, events, Secrets and ConfigMaps for
reading, service accounts to read and impersonate). Like Flux's cluster-reconciler,
lacre-cluster-reconciler also binds cluster-admin, because Kustomizations
without spec.serviceAccountName are applied with the controller's identity.
Set serviceAccountName on every tenant Kustomization to narrow that down.

Without --export, everything is applied server-side (field manager "lacre")
and the command waits for the CRDs to be Established.`,
		Example: `  lacre install
  lacre install --export > lacre.yaml
  lacre install --namespace=gitops --image=registry.example.com/lacre:v0.2.0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if image == "" {
				image = defaultImage(version)
			}
			objs, err := installObjects(installOptions{namespace: cf.namespace, image: image})
			if err != nil {
				return err
			}
			if cf.export {
				return writeYAMLDocs(a.Stdout, objs)
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			return a.applyInstall(cmd.Context(), c, objs, cf.timeout)
		},
	}
	cf.register(cmd)
	setDefault(cmd, "namespace", defaultInstallNS)
	cf.namespace = defaultInstallNS
	cmd.Flags().Lookup("namespace").Usage = "namespace to install the controller in"
	cmd.Flags().Lookup("timeout").Usage = "how long to wait for the CRDs"
	cmd.Flags().StringVar(&image, "image", "", "controller image (default "+defaultImageRepo+":v<version>, pinned to the release's digest when this binary is a release build)")
	cmd.Flags().StringVar(&version, "version", "", "lacre version whose image to run (default: this binary's, "+cliapp.Version+")")
	return cmd
}

func setDefault(cmd *cobra.Command, flag, value string) {
	f := cmd.Flags().Lookup(flag)
	f.DefValue = value
	_ = f.Value.Set(value)
}

// applyInstall server-side applies objs and waits for the CRDs.
func (a *app) applyInstall(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, timeout time.Duration) error {
	for _, o := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(installFieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %v", o.GetKind(), objName(o), err)
		}
		fmt.Fprintf(a.Stderr, "lacre: %s %s applied\n", o.GetKind(), objName(o))
		if o.GetKind() == "CustomResourceDefinition" {
			if err := waitEstablished(ctx, c, o, timeout); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(a.Stdout, "lacre installed")
	return nil
}

func objName(o client.Object) string {
	if o.GetNamespace() != "" {
		return o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetName()
}

// waitEstablished waits until the CRD o is Established and served.
func waitEstablished(ctx context.Context, c client.Client, o *unstructured.Unstructured, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := crd.Wait(ctx, c, o); err != nil {
		return fmt.Errorf("CustomResourceDefinition %s not Established after %s", o.GetName(), timeout)
	}
	return nil
}

// confirm asks a y/N question on stderr and reads the answer from stdin.
func (a *app) confirm(question string) bool {
	fmt.Fprintf(a.Stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(a.Stdin).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes"
}

var errNotConfirmed = cliapp.Codef(cliapp.CodeGeneric, "not confirmed: nothing deleted (answer y, or pass --silent)")

func (a *app) uninstallCommand() *cobra.Command {
	var cf clusterFlags
	var keepNS, silent bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove the lacre controller, its CRDs and every GitRepository and Kustomization",
		Long: `Remove what lacre install created. GitRepositories and Kustomizations in every
namespace are deleted first, with their finalizers removed so that nothing they
applied is pruned (as flux uninstall). Then the controller, its RBAC, the CRDs
and the namespace (unless --keep-namespace).`,
		Example: `  lacre uninstall
  lacre uninstall --silent --keep-namespace`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !silent && !a.confirm(fmt.Sprintf("Delete lacre from namespace %s, its CRDs and all GitRepositories and Kustomizations?", cf.namespace)) {
				return errNotConfirmed
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			return a.uninstall(cmd.Context(), c, cf.namespace, keepNS)
		},
	}
	cf.register(cmd)
	_ = cmd.Flags().MarkHidden("export")
	_ = cmd.Flags().MarkHidden("timeout")
	setDefault(cmd, "namespace", defaultInstallNS)
	cf.namespace = defaultInstallNS
	cmd.Flags().Lookup("namespace").Usage = "namespace lacre is installed in"
	cmd.Flags().BoolVar(&keepNS, "keep-namespace", false, "do not delete the namespace")
	cmd.Flags().BoolVarP(&silent, "silent", "s", false, "do not ask for confirmation")
	return cmd
}

func (a *app) uninstall(ctx context.Context, c client.Client, ns string, keepNS bool) error {
	// Custom resources first, finalizers removed: nothing gets pruned.
	for _, l := range []client.ObjectList{&kustomizev1.KustomizationList{}, &sourcev1.GitRepositoryList{}, &sourcev1.OCIRepositoryList{}, &sourcev1.BucketList{}} {
		if err := c.List(ctx, l); err != nil {
			if apimeta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		items, err := apimeta.ExtractList(l)
		if err != nil {
			return err
		}
		for _, it := range items {
			o := it.(client.Object)
			if len(o.GetFinalizers()) > 0 {
				patch := client.MergeFrom(o.DeepCopyObject().(client.Object))
				o.SetFinalizers(nil)
				if err := c.Patch(ctx, o, patch); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("remove finalizers of %s: %v", objName(o), err)
				}
			}
			if err := c.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			gvks, _, _ := controller.NewScheme().ObjectKinds(o)
			kind := ""
			if len(gvks) > 0 {
				kind = gvks[0].Kind
			}
			fmt.Fprintf(a.Stderr, "lacre: %s %s deleted\n", kind, objName(o))
		}
	}
	objs, err := installObjects(installOptions{namespace: ns})
	if err != nil {
		return err
	}
	// Reverse apply order: the Deployment first, the CRDs after the RBAC,
	// the namespace last.
	var nsObj *unstructured.Unstructured
	bg := metav1.DeletePropagationBackground
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		if o.GetKind() == "Namespace" {
			nsObj = o
			continue
		}
		err := c.Delete(ctx, o, &client.DeleteOptions{PropagationPolicy: &bg})
		switch {
		case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
		case err != nil:
			return fmt.Errorf("delete %s %s: %v", o.GetKind(), objName(o), err)
		default:
			fmt.Fprintf(a.Stderr, "lacre: %s %s deleted\n", o.GetKind(), objName(o))
		}
	}
	if nsObj != nil && !keepNS {
		if err := c.Delete(ctx, nsObj, &client.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Namespace %s: %v", ns, err)
		}
		fmt.Fprintf(a.Stderr, "lacre: Namespace %s deleted\n", ns)
	}
	fmt.Fprintln(a.Stdout, "lacre uninstalled")
	return nil
}
