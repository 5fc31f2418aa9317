package cluster

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/source/bucket/buckettest"
)

// TestCreateSourceBucketExport: flux's flags set the Bucket's fields;
// the export holds the Bucket only; an unknown provider is refused.
func TestCreateSourceBucketExport(t *testing.T) {
	code, out, errs := runCLI(t, "", "create", "source", "bucket", "podinfo", "--bucket-name=podinfo", "--endpoint=minio.minio:9000",
		"--insecure", "--provider=aws", "--region=us-east-1", "--secret-ref=s3", "--proxy-secret-ref=corp", "--ignore-paths=a,b/",
		"--fetch-timeout=30s", "--interval=10m", "--export")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"kind: Bucket\n", "bucketName: podinfo\n", "endpoint: minio.minio:9000\n", "insecure: true\n", "provider: aws\n",
		"region: us-east-1\n", "secretRef:\n    name: s3\n", "proxySecretRef:\n    name: corp\n", "ignore: |-\n    a\n    b/\n", "timeout: 30s\n", "interval: 10m0s\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if code, _, errs := runCLI(t, "", "create", "source", "bucket", "x", "--bucket-name=b", "--endpoint=e", "--provider=s3", "--export"); code == 0 || !strings.Contains(errs, "source bucket provider 's3' is not supported") {
		t.Errorf("--provider=s3: exit %d: %s", code, errs)
	}
	if code, _, errs := runCLI(t, "", "create", "source", "bucket", "x", "--endpoint=e", "--export"); code == 0 || !strings.Contains(errs, "bucket-name is required") {
		t.Errorf("no --bucket-name: exit %d: %s", code, errs)
	}
}

// TestBucketWithCLI: create source bucket with --access-key/--secret-key
// against a real S3-protocol server and lacre's controllers, then get
// sources bucket and reconcile source bucket.
func TestBucketWithCLI(t *testing.T) {
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
	srv := buckettest.New(t, buckettest.Options{AccessKey: "AKIACLI", SecretKey: "cli-secret-key"})
	srv.CreateBucket(t, "podinfo")
	srv.Put(t, "podinfo", "deploy/cm.yaml", []byte("kind: ConfigMap\n"))
	kc := "--kubeconfig=" + cl.Kubeconfig()
	lacre := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, "", append(args, kc)...)
		if code != 0 {
			t.Fatalf("lacre %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	out := lacre("create", "source", "bucket", "podinfo", "--bucket-name=podinfo", "--endpoint="+srv.Endpoint, "--insecure",
		"--access-key=AKIACLI", "--secret-key=cli-secret-key", "--interval=1h")
	rev := regexp.MustCompile(`fetched revision: (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)
	if rev == nil {
		t.Fatalf("no revision in %q", out)
	}
	if out := lacre("get", "sources", "bucket"); !strings.Contains(out, "podinfo") || !strings.Contains(out, rev[1]) || !strings.Contains(out, "True") {
		t.Errorf("get sources bucket:\n%s", out)
	}
	srv.Put(t, "podinfo", "deploy/new.yaml", []byte("kind: ConfigMap # new\n"))
	if out := lacre("reconcile", "source", "bucket", "podinfo"); !strings.Contains(out, "Bucket flux-system/podinfo: sha256:") || strings.Contains(out, rev[1]) {
		t.Errorf("reconcile source bucket did not follow the new object: %s", out)
	}
}
