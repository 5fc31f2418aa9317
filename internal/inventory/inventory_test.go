package inventory

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// TestIDFormatParse: IDs as cli-utils writes them (':' in RBAC names as
// "__"), and back.
func TestIDFormatParse(t *testing.T) {
	for _, c := range []struct {
		u       *unstructured.Unstructured
		id, ver string
	}{
		{obj("v1", "ConfigMap", "apps", "cm"), "apps_cm__ConfigMap", "v1"},
		{obj("apps/v1", "Deployment", "apps", "web"), "apps_web_apps_Deployment", "v1"},
		{obj("v1", "Namespace", "", "apps"), "_apps__Namespace", "v1"},
		{obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "system:controller:x"), "_system__controller__x_rbac.authorization.k8s.io_ClusterRole", "v1"},
		{obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "a:b"), "_a__b_rbac.authorization.k8s.io_ClusterRoleBinding", "v1"},
		{obj("rbac.authorization.k8s.io/v1", "Role", "apps", "r:1"), "apps_r__1_rbac.authorization.k8s.io_Role", "v1"},
		{obj("rbac.authorization.k8s.io/v1", "RoleBinding", "apps", "rb:1"), "apps_rb__1_rbac.authorization.k8s.io_RoleBinding", "v1"},
		{obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "flux-system", "apps"), "flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization", "v1"},
	} {
		e := Entry(c.u)
		if e.ID != c.id || e.Version != c.ver {
			t.Errorf("Entry(%s) = %+v, want %s %s", Of(c.u), e, c.id, c.ver)
		}
		o, err := Parse(c.id)
		if err != nil || o != Of(c.u) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.id, o, err, Of(c.u))
		}
	}
}

// TestParseOldAndMalformed: IDs written before the escaping (a raw ':')
// parse to the same object; malformed ones are refused.
func TestParseOldAndMalformed(t *testing.T) {
	old, err := Parse("_system:controller:x_rbac.authorization.k8s.io_ClusterRole")
	if err != nil {
		t.Fatal(err)
	}
	if want := Of(obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "system:controller:x")); old != want {
		t.Fatalf("old ID parsed to %+v, want %+v", old, want)
	}
	for _, id := range []string{"", "a", "a_b", "a_b_c", "a__g_K", "a_b_g_", "a_b_c_g_K", "ns_a_b_c_d"} {
		if _, err := Parse(id); !errors.Is(err, ErrMalformedID) {
			t.Errorf("Parse(%q) = %v, want ErrMalformedID", id, err)
		}
	}
}
