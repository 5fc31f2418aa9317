package controller

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lacre/lacre/config/crd"
	"github.com/lacre/lacre/internal/testcluster"
	"github.com/lacre/lacre/keys/awskms"
	"github.com/lacre/lacre/keys/awskms/kmstest"
)

// The real local control plane, shared by the package's tests.
var (
	testEnv    *testcluster.Cluster
	testClient client.Client
	testMgr    *Manager
	testCtx    context.Context
	skipReason string
	// testKMS is a local AWS KMS; the manager's AWS endpoint points at it.
	testKMS *kmstest.Server
)

// The manager's default age Secret and the namespace label that selects it.
const (
	defaultAgeNamespace = "lacre-system"
	defaultAgeLabel     = "lacre.test/default-age"
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testCtx = ctx
	c, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("LACRE_REQUIRE_CLUSTER") == "1" {
			fmt.Fprintln(os.Stderr, "controller tests need the local control plane:", err)
			return 1
		}
		skipReason = err.Error()
		return m.Run()
	}
	defer c.Stop()
	testEnv = c
	cfg := restConfig(c)
	testClient, err = client.New(cfg, client.Options{Scheme: NewScheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := crd.Install(ctx, testClient); err != nil {
		fmt.Fprintln(os.Stderr, "installing CRDs:", err)
		return 1
	}
	testLogs.stderr = os.Getenv("LACRE_TEST_LOGS") != ""
	ctrl.SetLogger(zap.New(zap.WriteTo(testLogs), zap.UseDevMode(true), zap.Level(testLogs)))
	testKMS = kmstest.New()
	defer testKMS.Close()
	sel, _ := labels.Parse(defaultAgeLabel + "=true")
	// Objects labelled tenancyLabel or isolatedLabel belong to a test's own
	// manager (the tenancy tests' locked-down one, the fault tests').
	// The second API server of the kubeConfig test serves a self-signed
	// certificate.
	testMgr, err = NewManager(Options{Config: cfg, Concurrent: 4, KubeConfig: KubeConfigOptions{InsecureTLS: true}, WatchSelector: "!" + tenancyLabel + ",!" + isolatedLabel, Decryption: DecryptionOptions{
		AWS:                  awskms.Options{Endpoint: testKMS.URL},
		DefaultAgeSecret:     types.NamespacedName{Namespace: defaultAgeNamespace, Name: "sops-age-default"},
		DefaultAgeNamespaces: sel,
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		if err := testMgr.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return m.Run()
}

func restConfig(c *testcluster.Cluster) *rest.Config {
	return &rest.Config{
		Host:            c.Host(),
		TLSClientConfig: rest.TLSClientConfig{CertData: c.CertPEM, KeyData: c.KeyPEM, Insecure: true},
		QPS:             200, Burst: 400,
	}
}

// testLogs receives the controllers' debug logs: on stderr with
// LACRE_TEST_LOGS set, and into a test's buffer while it taps them.
var testLogs = &logTap{}

// logTap is a log sink enabled only while someone reads it.
type logTap struct {
	mu     sync.Mutex
	stderr bool
	w      io.Writer
}

// tapLogs copies the controllers' logs to w until the test ends.
func tapLogs(t *testing.T, w io.Writer) {
	testLogs.mu.Lock()
	testLogs.w = w
	testLogs.mu.Unlock()
	t.Cleanup(func() {
		testLogs.mu.Lock()
		testLogs.w = nil
		testLogs.mu.Unlock()
	})
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stderr {
		os.Stderr.Write(p)
	}
	if l.w != nil {
		l.w.Write(p)
	}
	return len(p), nil
}

// Enabled makes zap skip formatting when nobody reads.
func (l *logTap) Enabled(lvl zapcore.Level) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return (l.stderr || l.w != nil) && lvl >= zapcore.DebugLevel
}

func needCluster(t *testing.T) {
	t.Helper()
	if testEnv == nil {
		t.Skip("no local control plane (run hack/k8s/build.sh): " + skipReason)
	}
}

func newNamespace(t *testing.T) string {
	t.Helper()
	name := "t-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	name = strings.TrimRight(name, "-")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := testClient.Create(testCtx, ns); err != nil {
		t.Fatal(err)
	}
	return name
}
