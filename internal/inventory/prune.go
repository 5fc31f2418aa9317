package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
// mean that) and objects Prunable leaves alone. As in Flux, a failure (a
// Get error other than gone, or fn's error) does not end the walk: Stale
// returns the entries whose object may still be there (survivors, to stay
// in the inventory so the deletion is retried) and the errors, redacted,
// joined by "; ".
func Stale(ctx context.Context, rd client.Reader, owner Owner, old, keep []kustomizev1.ResourceRef, gone func(error) bool,
	fn func(id string, live *unstructured.Unstructured) error) (survivors []kustomizev1.ResourceRef, err error) {
	kept := map[Object]bool{}
	for _, e := range keep {
		if o, err := Parse(e.ID); err == nil {
			kept[o] = true
		}
	}
	var errs []string
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
			survivors = append(survivors, e)
			errs = append(errs, fmt.Sprintf("%s: %s", e.ID, redact.Error(err)))
			continue
		}
		if !Prunable(live, owner) {
			continue
		}
		if err := fn(e.ID, live); err != nil {
			survivors = append(survivors, e)
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		// Oldest first, as the inventory lists them.
		slices.Reverse(survivors)
		return survivors, errors.New(strings.Join(errs, "; "))
	}
	return nil, nil
}
