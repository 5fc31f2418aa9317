package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const canary = "CANARY-redact-4f1e"

// TestErrorCanary: no error that quotes the canary shows it; each keeps
// what makes it useful.
func TestErrorCanary(t *testing.T) {
	secrets := schema.GroupResource{Resource: "secrets"}
	for _, c := range []struct {
		name string
		err  error
		keep []string
	}{
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "db", field.ErrorList{
			field.Invalid(field.NewPath("data").Key("bad key!"), canary, "a valid config key must consist of alphanumeric characters")}),
			[]string{"Invalid (422)", "data[bad key!]"}},
		{"bad request", apierrors.NewBadRequest("failed to create typed patch object: .data.x: expected string, got " + canary), []string{"BadRequest (400)"}},
		{"internal", apierrors.NewInternalError(errors.New("etcd said " + canary)), []string{"InternalError (500)"}},
		{"webhook denial", apierrors.NewForbidden(secrets, "db", errors.New(`admission webhook "v" denied the request: `+canary)), []string{"Forbidden (403)"}},
		{"wrapped invalid", fmt.Errorf("Secret/db apply: %w", apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "db", field.ErrorList{field.Invalid(field.NewPath("data"), canary, "x")})), []string{"Invalid (422)"}},
		{"kustomize", errors.New("map[string]interface {}: yaml: line 3: mapping values are not allowed\n  password: " + canary), []string{"mapping values are not allowed"}},
		{"kustomize invalid utf8", fmt.Errorf("accumulating resources: %w", fmt.Errorf("line %v has invalid utf8 bytes : %v", []byte("PASSWORD="+canary+"\xff"), "PASSWORD="+canary+"\xff")), []string{"accumulating resources", "invalid UTF-8"}},
		{"kustomize literal", errors.New("secretGenerator g: invalid literal source " + canary + ", expected key=value"), []string{"secretGenerator g", "invalid literal source"}},
		{"long", errors.New(strings.Repeat("é", MaxLen) + canary), []string{"..."}},
		{"not found", apierrors.NewNotFound(secrets, "db"), []string{`secrets "db" not found`}},
		{"forbidden", apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "cm", errors.New(`User "system:serviceaccount:t:deployer" cannot get resource`)), []string{"forbidden", "system:serviceaccount:t:deployer"}},
	} {
		got := Error(c.err)
		if strings.Contains(got, canary) || !utf8Valid(got) {
			t.Errorf("%s: %q leaks the canary (or cut a rune)", c.name, got)
		}
		for _, k := range c.keep {
			if !strings.Contains(got, k) {
				t.Errorf("%s: %q lost %q", c.name, got, k)
			}
		}
	}
	if Error(nil) != "" {
		t.Error("Error(nil) is not empty")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestValues(t *testing.T) {
	msg := "clone https://user:" + canary + "@git.example/r failed; token abc"
	got := Values(msg, canary, "abc", "")
	if strings.Contains(got, canary) || !strings.Contains(got, "abc") || !strings.Contains(got, "user:***@") {
		t.Fatalf("Values: %q", got)
	}
}

// TestRBACForbidden: the API server's RBAC refusal keeps its message.
func TestRBACForbidden(t *testing.T) {
	err := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "tenant-cm",
		errors.New(`User "system:serviceaccount:t:deployer" cannot get resource "configmaps" in API group "" in the namespace "t": access denied`))
	if got := Error(err); !strings.Contains(got, "forbidden") || !strings.Contains(got, "system:serviceaccount:t:deployer") {
		t.Fatalf("Error(RBAC forbidden) = %q", got)
	}
	vap := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "cm",
		errors.New(`ValidatingAdmissionPolicy 'p' with binding 'b' denied request: value `+canary))
	if got := Error(vap); strings.Contains(got, canary) {
		t.Fatalf("Error(VAP denial) = %q", got)
	}
}
