package crd_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/config/crd"
	"github.com/lacre/lacre/internal/controller"
	"github.com/lacre/lacre/internal/testcluster"
)

func TestObjects(t *testing.T) {
	objs, err := crd.Objects()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s: kind %q", o.GetName(), o.GetKind())
		}
		names = append(names, o.GetName())
	}
	want := []string{"kustomizations.kustomize.toolkit.fluxcd.io", "buckets.source.toolkit.fluxcd.io", "gitrepositories.source.toolkit.fluxcd.io", "ocirepositories.source.toolkit.fluxcd.io"}
	if !slices.Equal(names, want) {
		t.Fatalf("CRDs %v, want %v (file name order)", names, want)
	}
	// Each call returns objects of its own.
	objs[0].SetLabels(map[string]string{"changed": "yes"})
	again, _ := crd.Objects()
	if again[0].GetLabels()["changed"] != "" {
		t.Error("Objects returned shared objects")
	}
}

// TestInstall installs on a fresh API server: right after Install, a
// client created then lists both kinds (served, not only Established).
func TestInstall(t *testing.T) {
	ctx := context.Background()
	cl, err := testcluster.Start(ctx, testcluster.Options{})
	if errors.Is(err, testcluster.ErrNoBinaries) && os.Getenv("CI") != "true" && os.Getenv("LACRE_REQUIRE_CLUSTER") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	cfg := &rest.Config{Host: cl.Host(), TLSClientConfig: rest.TLSClientConfig{CertData: cl.CertPEM, KeyData: cl.KeyPEM, Insecure: true}}
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := crd.Install(ctx, c); err != nil {
		t.Fatal(err)
	}
	t.Logf("installed and served in %s", time.Since(start).Round(time.Millisecond))
	fresh, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []client.ObjectList{&kustomizev1.KustomizationList{}, &sourcev1.GitRepositoryList{}, &sourcev1.BucketList{}} {
		if err := fresh.List(ctx, l); err != nil {
			t.Errorf("list %T right after Install: %v", l, err)
		}
	}
	// A second Install fails: the CRDs exist.
	if err := crd.Install(ctx, c); err == nil {
		t.Error("a second Install succeeded")
	}
	// Wait on an unknown CRD ends with the context.
	objs, _ := crd.Objects()
	objs[0].SetName("nothings.example.com")
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := crd.Wait(wctx, c, objs[0]); !errors.Is(err, crd.ErrNotReady) {
		t.Errorf("Wait on a missing CRD: %v, want ErrNotReady", err)
	}
}
