package cluster

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/artifact"
	"github.com/lacre/lacre/internal/controller"
)

// TestCreateSourceOCIExport: flux's `create source oci` flags map to the
// OCIRepository's fields; a missing reference is refused.
func TestCreateSourceOCIExport(t *testing.T) {
	code, out, errOut := runCLI(t, "", "create", "source", "oci", "app", "--url=oci://registry.example/app", "--tag-semver=>=1.0.0",
		"--secret-ref=regcred", "--cert-ref=regca", "--insecure", "--ignore-paths=*.md,docs/", "--verify-provider=cosign",
		"--verify-secret-ref=cosign-pub", "--interval=5m", "--export")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	for _, want := range []string{"kind: OCIRepository", "url: oci://registry.example/app", "semver: '>=1.0.0'", "secretRef:\n    name: regcred",
		"certSecretRef:\n    name: regca", "insecure: true", "ignore: |-\n    *.md\n    docs/", "provider: cosign", "interval: 5m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if code, _, errOut := runCLI(t, "", "create", "source", "oci", "app", "--url=oci://registry.example/app", "--export"); code == 0 || !strings.Contains(errOut, "--tag") {
		t.Errorf("no reference: code %d, %s", code, errOut)
	}
}

// TestSourceOCIWithCLI: create source oci against a registry on loopback,
// get sources oci and all, reconcile source oci, and a Kustomization from
// --source=OCIRepository/NAME.
func TestSourceOCIWithCLI(t *testing.T) {
	cl, c := startCluster(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", cl.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	installCRDs(t, c)
	ctrl.SetLogger(logr.Discard())
	mgr, err := controller.NewManager(controller.Options{Config: cfg, Concurrent: 2, MetricsAddr: "0", HealthAddr: "0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer mgr.Close()
	go mgr.Run(ctx)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	pushArtifact(t, host+"/apps:v1", map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-oci\n  namespace: flux-system\n"})

	kc := "--kubeconfig=" + cl.Kubeconfig()
	lacre := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, "", append(args, kc)...)
		if code != 0 {
			t.Fatalf("lacre %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	if out := lacre("create", "source", "oci", "apps", "--url=oci://"+host+"/apps", "--tag=v1"); !strings.Contains(out, "fetched revision: v1@sha256:") {
		t.Fatalf("create source oci: %s", out)
	}
	if out := lacre("get", "sources", "oci"); !strings.Contains(out, "apps") || !strings.Contains(out, "v1@sha256:") {
		t.Fatalf("get sources oci:\n%s", out)
	}
	if out := lacre("get", "sources", "all"); !strings.Contains(out, "ocirepository/apps") {
		t.Fatalf("get sources all:\n%s", out)
	}
	lacre("reconcile", "source", "oci", "apps")
	lacre("create", "kustomization", "apps", "--source=OCIRepository/apps", "--path=./", "--prune=true")
	lacre("reconcile", "kustomization", "apps", "--with-source")
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "from-oci"}, cm); err != nil {
		t.Fatal(err)
	}
}

// pushArtifact pushes files as one Flux content layer to ref.
func pushArtifact(t *testing.T, ref string, files map[string]string) {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, c := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(c), Mode: 0o600}
	}
	data, err := artifact.Build(fsys, nil, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(data, sourcev1.OCIFluxContentMediaType)})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}
