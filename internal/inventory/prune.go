package inventory

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/redact"
)

// Stale walks the entries of old that keep no longer holds, newest first,
// and calls fn with each one's live object when Prunable lets it go.
// Entries are compared as objects, so an ID written before cli-utils'
// escaping matches its escaped form; entries that do not parse are
// skipped, and so are objects already gone (gone reports which Get errors
// mean that). Other Get errors end the walk, redacted.
func Stale(ctx context.Context, rd client.Reader, owner Owner, old, keep []kustomizev1.ResourceRef, gone func(error) bool,
	fn func(id string, live *unstructured.Unstructured) error) error {
	kept := map[Object]bool{}
	for _, e := range keep {
		if o, err := Parse(e.ID); err == nil {
			kept[o] = true
		}
	}
	for i := len(old) - 1; i >= 0; i-- {
		e := old[i]
		o, err := Parse(e.ID)
		if err != nil || kept[o] {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind(e.Version))
		if err := rd.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, live); err != nil {
			if gone(err) {
				continue
			}
			return fmt.Errorf("%s: %s", e.ID, redact.Error(err))
		}
		if !Prunable(live, owner) {
			continue
		}
		if err := fn(e.ID, live); err != nil {
			return err
		}
	}
	return nil
}
