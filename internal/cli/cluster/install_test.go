package cluster

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/cli/cliapp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestInstallExportGolden(t *testing.T) {
	code, out, errs := runCLI(t, "", "install", "--export", "--version=v0.1.0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	golden := filepath.Join("testdata", "install.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("install --export differs from %s (go test -run TestInstallExportGolden -update to accept):\n%s", golden, out)
	}
	// Stable: a second run prints the same bytes.
	if _, again, _ := runCLI(t, "", "install", "--export", "--version=v0.1.0"); again != out {
		t.Error("install --export is not stable")
	}
}

func TestInstallExportFlags(t *testing.T) {
	_, out, _ := runCLI(t, "", "install", "--export", "-n", "gitops", "--image", "example.com/lacre:dev")
	for _, want := range []string{"image: example.com/lacre:dev", "namespace: gitops", "--storage-adv-addr=lacre-source.gitops.svc.cluster.local."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "lacre-system") {
		t.Error("output still names lacre-system")
	}
}

// TestInstallOnCluster installs on a real API server, checks every object
// and the Deployment's hardening, exercises tree, events and delete, then
// uninstalls.
func TestInstallOnCluster(t *testing.T) {
	cl, c := startCluster(t)
	kc := "--kubeconfig=" + cl.Kubeconfig()
	ctx := t.Context()

	code, out, errs := runCLI(t, "", "install", kc, "--version=v0.1.0")
	if code != 0 {
		t.Fatalf("install exited %d:\n%s\n%s", code, out, errs)
	}
	_, export, _ := runCLI(t, "", "install", "--export", "--version=v0.1.0")
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(export, "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	if len(objs) < 12 {
		t.Fatalf("only %d objects exported", len(objs))
	}
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), objName(o), err)
			continue
		}
		managed := false
		for _, mf := range got.GetManagedFields() {
			if mf.Manager == "lacre" && mf.Operation == metav1.ManagedFieldsOperationApply {
				managed = true
			}
		}
		if !managed {
			t.Errorf("%s %s is not server-side applied by lacre", o.GetKind(), objName(o))
		}
	}
	// Idempotent.
	if code, _, errs := runCLI(t, "", "install", kc, "--version=v0.1.0"); code != 0 {
		t.Fatalf("second install exited %d: %s", code, errs)
	}

	dep := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "lacre-system", Name: "lacre-controller"}, dep); err != nil {
		t.Fatal(err)
	}
	checkPodSpec(t, &dep.Spec.Template.Spec)

	// Objects for tree, events and delete.
	repo := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "flux-system"},
		Spec: sourcev1.GitRepositorySpec{URL: "https://example.com/repo", Interval: metav1.Duration{Duration: time.Minute}}}
	parent := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "parent", Namespace: "flux-system"},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Path: "./",
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}}}
	child := parent.DeepCopy()
	child.Name = "child"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{repo, parent, child} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	parent.Status.Inventory = &kustomizev1.ResourceInventory{Entries: []kustomizev1.ResourceRef{
		{ID: "_apps__Namespace", Version: "v1"},
		{ID: "apps_db_apps_Deployment", Version: "v1"},
		{ID: "flux-system_child_kustomize.toolkit.fluxcd.io_Kustomization", Version: "v1"},
	}}
	child.Status.Inventory = &kustomizev1.ResourceInventory{Entries: []kustomizev1.ResourceRef{
		{ID: "apps_db-credentials__Secret", Version: "v1"},
	}}
	for _, k := range []*kustomizev1.Kustomization{parent, child} {
		if err := c.Status().Update(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// Names complete from the cluster.
	code, out, _ = runCLI(t, "", "__complete", "reconcile", "kustomization", kc, "")
	if code != 0 || !strings.Contains(out, "child\n") || !strings.Contains(out, "parent\n") {
		t.Errorf("completion of Kustomization names: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "__complete", "delete", "source", "git", kc, "r")
	if code != 0 || !strings.HasPrefix(out, "repo\n") {
		t.Errorf("completion of GitRepository names: %d\n%s", code, out)
	}
	code, out, errs = runCLI(t, "", "tree", "kustomization", "parent", kc)
	wantTree := `Kustomization/flux-system/parent
├── Namespace/apps
├── Deployment/apps/db
└── Kustomization/flux-system/child
    └── Secret/apps/db-credentials
`
	if code != 0 || out != wantTree {
		t.Errorf("tree exited %d:\n%s\nwant:\n%s\n%s", code, out, wantTree, errs)
	}
	code, _, errs = runCLI(t, "", "tree", "kustomization", "nope", kc)
	if code != 1 || !strings.Contains(errs, "Kustomization flux-system/nope not found") {
		t.Errorf("tree of a missing Kustomization: exit %d, %q", code, errs)
	}

	now := time.Now()
	mkEvent := func(name, kind, apiVersion, obj, reason, msg string, age time.Duration) {
		e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system"},
			InvolvedObject: corev1.ObjectReference{Kind: kind, APIVersion: apiVersion, Name: obj, Namespace: "flux-system"},
			Reason:         reason, Message: msg, Type: corev1.EventTypeNormal,
			FirstTimestamp: metav1.NewTime(now.Add(-age)), LastTimestamp: metav1.NewTime(now.Add(-age)),
			Source: corev1.EventSource{Component: "lacre"}}
		if err := c.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	mkEvent("e1", "Kustomization", "kustomize.toolkit.fluxcd.io/v1", "parent", "ReconciliationSucceeded", "applied revision main@sha1:abc", time.Minute)
	mkEvent("e2", "GitRepository", "source.toolkit.fluxcd.io/v1", "repo", "NewArtifact", "stored artifact for main@sha1:abc", 2*time.Minute)
	mkEvent("e3", "Pod", "v1", "other", "Scheduled", "not ours", 30*time.Second)
	code, out, errs = runCLI(t, "", "events", kc)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "LAST SEEN") ||
		!strings.Contains(lines[1], "GitRepository/repo") || !strings.Contains(lines[2], "Kustomization/parent") || strings.Contains(out, "not ours") {
		t.Errorf("events exited %d:\n%s\n%s", code, out, errs)
	}
	code, out, _ = runCLI(t, "", "events", kc, "--for", "Kustomization/parent")
	if code != 0 || strings.Contains(out, "GitRepository/repo") || !strings.Contains(out, "ReconciliationSucceeded") {
		t.Errorf("events --for exited %d:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "events", kc, "-A")
	if code != 0 || !strings.HasPrefix(out, "NAMESPACE") || !strings.Contains(out, "flux-system") {
		t.Errorf("events -A exited %d:\n%s", code, out)
	}
	if code, _, errs := runCLI(t, "", "events", kc, "--for", "Pod/x"); code != 1 || !strings.Contains(errs, "unknown kind") {
		t.Errorf("events --for Pod/x: exit %d %q", code, errs)
	}

	// delete: refused without a y, done with one, and with --silent.
	code, _, errs = runCLI(t, "n\n", "delete", "kustomization", "child", kc)
	if code != 1 || !strings.Contains(errs, "not confirmed") {
		t.Errorf("delete answered n: exit %d %q", code, errs)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(child), &kustomizev1.Kustomization{}); err != nil {
		t.Errorf("child gone after a no: %v", err)
	}
	if code, _, errs := runCLI(t, "y\n", "delete", "kustomization", "child", kc); code != 0 {
		t.Errorf("delete answered y: exit %d %q", code, errs)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(child), &kustomizev1.Kustomization{}); !apierrors.IsNotFound(err) {
		t.Errorf("child still there: %v", err)
	}
	if code, _, errs := runCLI(t, "", "delete", "source", "git", "nope", "-s", kc); code != 1 || !strings.Contains(errs, "GitRepository flux-system/nope not found") {
		t.Errorf("delete missing: exit %d %q", code, errs)
	}

	// A finalizer nobody will remove (no controller runs): uninstall
	// removes it instead of hanging.
	if err := c.Get(ctx, client.ObjectKeyFromObject(parent), parent); err != nil {
		t.Fatal(err)
	}
	parent.Finalizers = []string{kustomizev1.KustomizationFinalizer}
	if err := c.Update(ctx, parent); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "", "uninstall", kc)
	if code != 1 || !strings.Contains(errs, "not confirmed") {
		t.Errorf("uninstall without an answer: exit %d %q", code, errs)
	}
	code, out, errs = runCLI(t, "", "uninstall", "-s", kc)
	if code != 0 {
		t.Fatalf("uninstall exited %d:\n%s\n%s", code, out, errs)
	}
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKeyFromObject(o), got)
		if o.GetKind() == "Namespace" && err == nil && got.GetDeletionTimestamp() != nil {
			continue // no namespace controller in the test cluster
		}
		if o.GetKind() == "CustomResourceDefinition" && err == nil && got.GetDeletionTimestamp() != nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s %s after uninstall: %v", o.GetKind(), objName(o), err)
		}
	}
}

func checkPodSpec(t *testing.T, spec *corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("pod securityContext: %+v", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod seccompProfile is not RuntimeDefault")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("host namespaces used")
	}
	for _, v := range spec.Volumes {
		if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
			t.Errorf("volume %s is not a memory emptyDir: %+v", v.Name, v.VolumeSource)
		}
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	ctr := spec.Containers[0]
	sc := ctr.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("container may run as root")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities: %+v", sc.Capabilities)
	}
	if ctr.LivenessProbe == nil || ctr.ReadinessProbe == nil {
		t.Error("no probes")
	}
	args := strings.Join(ctr.Args, " ")
	for _, want := range []string{"controller", "--leader-elect", "--storage-path=/data", "--metrics-addr=:8080"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q: %s", want, args)
		}
	}
	mounted := map[string]bool{}
	for _, m := range ctr.VolumeMounts {
		mounted[m.MountPath] = true
	}
	if !mounted["/data"] {
		t.Error("/data (the storage path) is not a mounted volume")
	}
}

// TestInstallDefaultImage: a release build (cliapp.ImageDigest stamped)
// names its own version's image by tag and digest; another --version, or a
// development build, by tag.
func TestInstallDefaultImage(t *testing.T) {
	oldV, oldD := cliapp.Version, cliapp.ImageDigest
	t.Cleanup(func() { cliapp.Version, cliapp.ImageDigest = oldV, oldD })
	cliapp.Version, cliapp.ImageDigest = "0.2.0", ""
	if got, want := defaultImage(""), "ghcr.io/lacre/lacre:v0.2.0"; got != want {
		t.Errorf("unstamped: %q, want %q", got, want)
	}
	cliapp.ImageDigest = "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ version, want string }{
		{"", "ghcr.io/lacre/lacre:v0.2.0@" + cliapp.ImageDigest},
		{"v0.2.0", "ghcr.io/lacre/lacre:v0.2.0@" + cliapp.ImageDigest},
		{"0.1.0", "ghcr.io/lacre/lacre:v0.1.0"},
	} {
		if got := defaultImage(tc.version); got != tc.want {
			t.Errorf("--version=%q: %q, want %q", tc.version, got, tc.want)
		}
	}
}
