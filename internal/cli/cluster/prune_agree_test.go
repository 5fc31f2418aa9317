package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/gittest"
	"github.com/lacre/lacre/internal/inventory"
)

// TestDiffAndControllerAgreeOnPrune: objects a Kustomization applied are
// removed from its source, each carrying (live) one annotation the prune
// rules read; `lacre diff` must announce exactly the deletions the
// controller then makes. A ClusterRole whose name holds ':' checks the
// inventory's escaping end to end.
func TestDiffAndControllerAgreeOnPrune(t *testing.T) {
	cl, c := startCluster(t)
	installCRDs(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, err := clientcmd.BuildConfigFromFlags("", cl.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"flux-system", "apps"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	ctrl.SetLogger(logr.Discard())
	mgr, err := controller.NewManager(controller.Options{Config: cfg, Concurrent: 2, MetricsAddr: "0", HealthAddr: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	go mgr.Run(ctx)

	// The annotation each ConfigMap gets once applied, and whether the
	// controller prunes it.
	cases := []struct {
		name  string
		ann   map[string]string
		prune bool
	}{
		{"plain", nil, true},
		{"reconcile-disabled", map[string]string{kustomizev1.ReconcileAnnotation: kustomizev1.DisabledValue}, false},
		{"ssa-ignore", map[string]string{kustomizev1.SSAAnnotation: inventory.SSAIgnore}, false},
		{"ssa-ifnotpresent", map[string]string{kustomizev1.SSAAnnotation: inventory.SSAIfNotPresent}, true},
		{"ssa-merge", map[string]string{kustomizev1.SSAAnnotation: inventory.SSAMerge}, true},
		{"ssa-override", map[string]string{kustomizev1.SSAAnnotation: inventory.SSAOverride}, true},
		{"prune-disabled", map[string]string{kustomizev1.PruneAnnotation: kustomizev1.DisabledValue}, false},
	}
	const role = "lacre-e2e:reader"
	kept := map[string]string{
		"apps/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - kept.yaml\n",
		"apps/kept.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: apps\ndata:\n  a: b\n",
	}
	all := map[string]string{"apps/kept.yaml": kept["apps/kept.yaml"],
		"apps/role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: " + role + "\nrules: []\n"}
	resources := "  - kept.yaml\n  - role.yaml\n"
	for _, tc := range cases {
		all["apps/"+tc.name+".yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + tc.name + "\n  namespace: apps\ndata:\n  a: b\n"
		resources += "  - " + tc.name + ".yaml\n"
	}
	all["apps/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + resources

	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("apps", "main")
	repo.Commit("all", all)
	kc := "--kubeconfig=" + cl.Kubeconfig()
	lacre := func(args ...string) cliRun {
		t.Helper()
		return runCLIEnv(t, nil, append(args, kc)...)
	}
	for _, args := range [][]string{
		{"create", "source", "git", "apps", "--url=" + repo.URL(), "--branch=main", "--interval=10m"},
		{"create", "kustomization", "apps", "--source=apps", "--path=./apps", "--prune=true", "--interval=10m"},
	} {
		if r := lacre(args...); r.code != 0 {
			t.Fatalf("lacre %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	ks := &kustomizev1.Kustomization{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "apps"}, ks); err != nil {
		t.Fatal(err)
	}
	roleID := "_lacre-e2e__reader_rbac.authorization.k8s.io_ClusterRole"
	if !slices.ContainsFunc(ks.Status.Inventory.Entries, func(e kustomizev1.ResourceRef) bool { return e.ID == roleID }) {
		t.Fatalf("inventory lacks %s: %+v", roleID, ks.Status.Inventory.Entries)
	}
	for _, tc := range cases {
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: tc.name}, cm); err != nil {
			t.Fatal(err)
		}
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		for k, v := range tc.ann {
			cm.Annotations[k] = v
		}
		if err := c.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}

	// What diff predicts for the source without them.
	local := filepath.Join(t.TempDir(), "apps")
	writeFiles(t, local, map[string]string{"kustomization.yaml": kept["apps/kustomization.yaml"], "kept.yaml": kept["apps/kept.yaml"]})
	r := lacre("diff", "kustomization", "apps", "-n", "flux-system", "--path", local)
	if r.code != 1 {
		t.Fatalf("diff: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var predicted []string
	for _, m := range regexp.MustCompile(`(?m)^► (\S+) \(pruned\)$`).FindAllStringSubmatch(r.stdout, -1) {
		predicted = append(predicted, m[1])
	}
	sort.Strings(predicted)

	// What the controller does.
	del := map[string]string{}
	for n := range all {
		if _, ok := kept[n]; !ok {
			del[n] = ""
		}
	}
	del["apps/kustomization.yaml"] = kept["apps/kustomization.yaml"]
	rev := repo.Commit("only kept", del)
	if r := lacre("reconcile", "kustomization", "apps", "--with-source"); r.code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "apps"}, ks); err == nil &&
			strings.Contains(ks.Status.LastAppliedRevision, rev) && len(ks.Status.Inventory.Entries) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Kustomization never applied %s: %+v", rev, ks.Status)
		}
		time.Sleep(250 * time.Millisecond)
	}
	var pruned, want []string
	gone := func(ref string, obj client.Object) {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) || (err == nil && !obj.GetDeletionTimestamp().IsZero()) {
			pruned = append(pruned, ref)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		gone("ConfigMap/apps/"+tc.name, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: tc.name}})
		if tc.prune {
			want = append(want, "ConfigMap/apps/"+tc.name)
		}
	}
	gone("ClusterRole/"+role, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}})
	want = append(want, "ClusterRole/"+role)
	sort.Strings(pruned)
	sort.Strings(want)
	if fmt.Sprint(predicted) != fmt.Sprint(pruned) {
		t.Errorf("diff predicted the deletion of\n  %v\nthe controller deleted\n  %v", predicted, pruned)
	}
	if fmt.Sprint(pruned) != fmt.Sprint(want) {
		t.Errorf("the controller deleted %v, want %v", pruned, want)
	}
}
