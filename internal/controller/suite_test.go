package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

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
	scheme := NewScheme()
	_ = apiextensionsv1.AddToScheme(scheme)
	testClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := installCRDs(ctx, testClient); err != nil {
		fmt.Fprintln(os.Stderr, "installing CRDs:", err)
		return 1
	}
	if os.Getenv("LACRE_TEST_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	}
	testKMS = kmstest.New()
	defer testKMS.Close()
	sel, _ := labels.Parse(defaultAgeLabel + "=true")
	// Objects labelled tenancyLabel or isolatedLabel belong to a test's own
	// manager (the tenancy tests' locked-down one, the fault tests').
	testMgr, err = NewManager(Options{Config: cfg, Concurrent: 4, WatchSelector: "!" + tenancyLabel + ",!" + isolatedLabel, Decryption: DecryptionOptions{
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

func needCluster(t *testing.T) {
	t.Helper()
	if testEnv == nil {
		t.Skip("no local control plane (run hack/k8s/build.sh): " + skipReason)
	}
}

// installCRDs applies config/crd/bases and waits until they are served.
func installCRDs(ctx context.Context, c client.Client) error {
	files, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs found: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, crd); err != nil {
			return err
		}
		if err := c.Create(ctx, crd); err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(crd), got); err == nil {
				established := false
				for _, cond := range got.Status.Conditions {
					if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
						established = true
					}
				}
				if established {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established", crd.Name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The REST mapping is discovered lazily; give discovery a moment.
	time.Sleep(time.Second)
	return nil
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
