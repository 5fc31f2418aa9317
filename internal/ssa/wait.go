package ssa

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lacre/lacre/internal/inventory"
	"github.com/lacre/lacre/internal/redact"
)

// errTimeout marks a wait that ran out of time.
var errTimeout = errors.New("timeout")

// poll calls done every interval until it reports true or an error, ctx
// ends, or timeout passes (errTimeout).
func poll(ctx context.Context, interval, timeout time.Duration, done func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return errTimeout
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitReady waits until every object of a stage that was not skipped is
// Current (kstatus: a CRD Established, a Namespace not terminating). It
// gives up early when the rest is Current and some are Failed, as Flux
// does, and at opts.Timeout.
func waitReady(ctx context.Context, c client.Client, changes []Change, opts Options) error {
	var objs []*unstructured.Unstructured
	for _, ch := range changes {
		if ch.Action != Skipped {
			objs = append(objs, ch.Object)
		}
	}
	if len(objs) == 0 {
		return nil
	}
	var pending, failed []string
	err := poll(ctx, opts.Interval, opts.Timeout, func() (bool, error) {
		pending, failed = nil, nil
		for _, u := range objs {
			s, msg := statusOf(ctx, c, u)
			line := fmt.Sprintf("%s status: '%s'", inventory.Of(u), s)
			if msg != "" {
				line += ": " + msg
			}
			switch s {
			case status.CurrentStatus:
			case status.FailedStatus:
				failed = append(failed, line)
			default:
				pending = append(pending, line)
			}
		}
		return len(pending) == 0, nil
	})
	switch {
	case errors.Is(err, errTimeout):
		return fmt.Errorf("timeout waiting for: [%s]", strings.Join(append(failed, pending...), ", "))
	case err != nil:
		return err
	case len(failed) > 0:
		return fmt.Errorf("failed early due to stalled resources: [%s]", strings.Join(failed, ", "))
	}
	return nil
}

// statusOf is u's live kstatus.
func statusOf(ctx context.Context, c client.Client, u *unstructured.Unstructured) (status.Status, string) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(u.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(u), live); err != nil {
		if apierrors.IsNotFound(err) {
			return status.NotFoundStatus, ""
		}
		return status.UnknownStatus, redact.Error(err)
	}
	res, err := status.Compute(live)
	if err != nil {
		return status.UnknownStatus, redact.Error(err)
	}
	return res.Status, res.Message
}

// recreate deletes live (in the background, as Flux) and waits until it
// is gone: its finalizers done, its name free for the new object.
func recreate(ctx context.Context, c client.Client, live *unstructured.Unstructured, opts Options) error {
	if err := c.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete object: %s", redact.Error(err))
	}
	uid := live.GetUID()
	err := poll(ctx, opts.Interval, opts.Timeout, func() (bool, error) {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(live.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKeyFromObject(live), cur)
		switch {
		case apierrors.IsNotFound(err):
			return true, nil
		case err != nil:
			return false, fmt.Errorf("failed to wait for object to be deleted: %s", redact.Error(err))
		}
		// Someone else created it again: that one is not ours to wait for.
		return cur.GetUID() != uid, nil
	})
	if errors.Is(err, errTimeout) {
		return fmt.Errorf("timed out after %s waiting for the object to be deleted", opts.Timeout)
	}
	return err
}

// immutable reports whether the API server refused a change as kubectl
// (and Flux) read it: Invalid or Conflict, or an admission webhook's or a
// CEL rule's message about an immutable field.
func immutable(err error) bool {
	if apierrors.IsInvalid(err) || apierrors.IsConflict(err) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "is immutable") || strings.Contains(msg, "immutable field")
}
