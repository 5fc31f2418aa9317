package build

import (
	"context"
	"strings"
	"testing"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/artifact"
)

const (
	originAnnotation      = "config.kubernetes.io/origin"
	transformerAnnotation = "alpha.config.kubernetes.io/transformations"
)

func componentFiles() artifact.Files {
	return artifact.Files{
		"app/kustomization.yaml": []byte("resources: [cm.yaml]\n"),
		"app/cm.yaml":            []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n"),
		"comp/kustomization.yaml": []byte("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n" +
			"labels:\n- pairs:\n    comp: \"yes\"\n"),
	}
}

// TestIgnoreMissingComponents: with spec.ignoreMissingComponents a
// component path missing from the source is left out of the build (the
// others still apply); without it the build fails, as in Flux.
func TestIgnoreMissingComponents(t *testing.T) {
	spec := kustomizev1.KustomizationSpec{Components: []string{"../comp", "../missing"}}
	if _, err := Build(context.Background(), componentFiles(), Options{Path: "app", Spec: spec}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing component without ignoreMissingComponents: %v", err)
	}
	spec.IgnoreMissingComponents = true
	res, err := Build(context.Background(), componentFiles(), Options{Path: "app", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 1 || res.Objects[0].GetLabels()["comp"] != "yes" {
		t.Fatalf("the present component not applied: %v", res.Objects)
	}
}

// TestBuildMetadata: spec.buildMetadata is the kustomization's
// buildMetadata (origin and transformer annotations on the built objects);
// a kustomization file of the source without resources gets origin
// annotations, as Flux's generator sets them; a generated one does not.
func TestBuildMetadata(t *testing.T) {
	spec := kustomizev1.KustomizationSpec{
		NamePrefix:    "p-",
		BuildMetadata: []kustomizev1.BuildMetadataOption{kustomizev1.BuildMetadataOriginAnnotations, kustomizev1.BuildMetadataTransformerAnnotations},
	}
	res, err := Build(context.Background(), componentFiles(), Options{Path: "app", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Objects[0].GetAnnotations()
	if !strings.Contains(a[originAnnotation], "path: cm.yaml") || !strings.Contains(a[transformerAnnotation], "PrefixTransformer") {
		t.Fatalf("annotations: %v", a)
	}
	res, err = Build(context.Background(), componentFiles(), Options{Path: "app"})
	if err != nil || len(res.Objects[0].GetAnnotations()) != 0 {
		t.Fatalf("without buildMetadata: %v %v", res, err)
	}

	gen := artifact.Files{"gen/kustomization.yaml": []byte("configMapGenerator:\n- name: g\n  literals: [a=b]\n")}
	res, err = Build(context.Background(), gen, Options{Path: "gen"})
	if err != nil || len(res.Objects) != 1 || !strings.Contains(res.Objects[0].GetAnnotations()[originAnnotation], "ConfigMapGenerator") {
		t.Fatalf("a kustomization file without resources: %v %v", res, err)
	}
	plain := artifact.Files{"plain/cm.yaml": componentFiles()["app/cm.yaml"]}
	res, err = Build(context.Background(), plain, Options{Path: "plain"})
	if err != nil || len(res.Objects) != 1 || len(res.Objects[0].GetAnnotations()) != 0 {
		t.Fatalf("a generated kustomization: %v %v", res, err)
	}
}
