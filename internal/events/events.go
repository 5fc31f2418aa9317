// Package events records the controllers' events as Flux's controllers
// do: as Kubernetes events (with their metadata as annotations) and, when
// an events address is set (--events-addr), also POSTed as JSON in Flux's
// event API format (event.toolkit.fluxcd.io v1beta1 Event) to that
// address, where Flux's notification-controller turns them into alerts and
// commit statuses.
//
// Callers pass messages that are already free of secrets (the controllers
// build them with internal/redact): this package forwards them as given.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
)

// Severities of Flux's event API.
const (
	SeverityTrace = "trace"
	SeverityInfo  = "info"
	SeverityError = "error"
)

// TypeTrace is the event type of a trace event: recorded as a Normal
// Kubernetes event, never sent to the events address (as in Flux).
const TypeTrace = "Trace"

// Keys of event metadata (Flux's; a controller prefixes them with its API
// group, e.g. kustomize.toolkit.fluxcd.io/revision).
const (
	MetaRevisionKey       = "revision"
	MetaOriginRevisionKey = "originRevision"
	MetaDigestKey         = "digest"
	MetaCommitStatusKey   = "commit_status"
	// MetaCommitStatusUpdate is MetaCommitStatusKey's value on the event
	// that reports a finished reconcile.
	MetaCommitStatusUpdate = "update"
)

// Group is the event API's group: an object's annotations with the prefix
// "event.toolkit.fluxcd.io/" are copied into each of its events' metadata.
const Group = "event.toolkit.fluxcd.io"

// MaxMessage bounds a message, as Flux's Event API does (39,000 characters).
const MaxMessage = 39000

// Event is Flux's event API v1beta1 Event, the body POSTed to the events
// address.
type Event struct {
	InvolvedObject      corev1.ObjectReference `json:"involvedObject"`
	Severity            string                 `json:"severity"`
	Timestamp           metav1.Time            `json:"timestamp"`
	Message             string                 `json:"message"`
	Reason              string                 `json:"reason"`
	Metadata            map[string]string      `json:"metadata,omitempty"`
	ReportingController string                 `json:"reportingController"`
	ReportingInstance   string                 `json:"reportingInstance,omitempty"`
}

// Delivery of events to the events address: like Flux's recorder, each
// POST has a 5 s timeout and is retried up to 4 times (waits 1 s, 2 s, 4 s,
// 8 s) on connection errors and 5xx answers other than 501; a 429 means
// the receiver already has the event (notification-controller's duplicate
// answer) and is not retried. Unlike Flux, delivery does not hold up the
// reconcile: events wait in a queue of QueueSize; when it is full, new ones
// are dropped (and logged).
const (
	QueueSize   = 1024
	postTimeout = 5 * time.Second
	maxRetries  = 4
)

// Recorder is a record.EventRecorder that also sends each event to an
// events address. Start (a manager Runnable) delivers them.
type Recorder struct {
	k8s        record.EventRecorder
	scheme     *runtime.Scheme
	webhook    string
	controller string
	instance   string
	log        logr.Logger
	client     *http.Client
	queue      chan Event
	// backoff is the wait before retry n (1-based).
	backoff func(n int) time.Duration
}

var _ record.EventRecorder = (*Recorder)(nil)

// Options configure a Recorder.
type Options struct {
	// Address is the events address (--events-addr), an http:// or
	// https:// URL; empty records Kubernetes events only.
	Address string
	// Controller is the reportingController (e.g. kustomize-controller),
	// Instance the reportingInstance (the pod's host name).
	Controller, Instance string
	Log                  logr.Logger
}

// NewRecorder returns a Recorder over the Kubernetes recorder k8s. An
// invalid address is an error naming --events-addr.
func NewRecorder(k8s record.EventRecorder, scheme *runtime.Scheme, opts Options) (*Recorder, error) {
	if err := ValidateAddress(opts.Address); err != nil {
		return nil, err
	}
	return &Recorder{
		k8s: k8s, scheme: scheme, webhook: opts.Address, controller: opts.Controller, instance: opts.Instance,
		log: opts.Log, client: &http.Client{Timeout: postTimeout}, queue: make(chan Event, QueueSize),
		backoff: func(n int) time.Duration { return min(time.Second<<(n-1), 30*time.Second) },
	}, nil
}

// ValidateAddress checks an --events-addr value ("" is valid: no address).
func ValidateAddress(addr string) error {
	if addr == "" {
		return nil
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--events-addr %q: must be an http:// or https:// URL", addr)
	}
	return nil
}

// Event implements record.EventRecorder.
func (r *Recorder) Event(obj runtime.Object, eventtype, reason, message string) {
	r.AnnotatedEventf(obj, nil, eventtype, reason, "%s", message)
}

// Eventf implements record.EventRecorder.
func (r *Recorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.AnnotatedEventf(obj, nil, eventtype, reason, messageFmt, args...)
}

// AnnotatedEventf records a Kubernetes event carrying annotations (plus
// the object's event.toolkit.fluxcd.io/ annotations) and queues the same
// event, with them as metadata, for the events address. Trace events are
// recorded as Normal Kubernetes events only.
func (r *Recorder) AnnotatedEventf(obj runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	meta := maps.Clone(annotations)
	if o, ok := obj.(interface{ GetAnnotations() map[string]string }); ok {
		for k, v := range o.GetAnnotations() {
			if strings.HasPrefix(k, Group+"/") {
				if meta == nil {
					meta = map[string]string{}
				}
				meta[k] = v
			}
		}
	}
	if eventtype == TypeTrace {
		r.k8s.AnnotatedEventf(obj, meta, corev1.EventTypeNormal, reason, messageFmt, args...)
		return
	}
	r.k8s.AnnotatedEventf(obj, meta, eventtype, reason, messageFmt, args...)
	if r.webhook == "" {
		return
	}
	ref, err := reference.GetReference(r.scheme, obj)
	if err != nil || ref.Kind == "" || ref.Name == "" || ref.Namespace == "" {
		r.log.Error(err, "event not sent: the object has no kind, name or namespace")
		return
	}
	msg := fmt.Sprintf(messageFmt, args...)
	if len(msg) > MaxMessage {
		msg = msg[:MaxMessage-3] + "..."
	}
	severity := SeverityInfo
	if eventtype == corev1.EventTypeWarning {
		severity = SeverityError
	}
	ev := Event{
		InvolvedObject: *ref, Severity: severity, Timestamp: metav1.Now(), Message: msg, Reason: reason,
		Metadata: meta, ReportingController: r.controller, ReportingInstance: r.instance,
	}
	select {
	case r.queue <- ev:
	default:
		r.log.Info("event not sent: the events queue is full", "kind", ref.Kind, "namespace", ref.Namespace, "name", ref.Name, "reason", reason)
	}
}

// NeedLeaderElection lets every replica deliver the events it records.
func (r *Recorder) NeedLeaderElection() bool { return false }

// Start delivers queued events until ctx ends.
func (r *Recorder) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-r.queue:
			if err := r.post(ctx, ev); err != nil {
				r.log.Error(err, "unable to send event", "kind", ev.InvolvedObject.Kind,
					"namespace", ev.InvolvedObject.Namespace, "name", ev.InvolvedObject.Name, "reason", ev.Reason)
			}
		}
	}
}

// post sends ev, retrying as described at QueueSize.
func (r *Recorder) post(ctx context.Context, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt <= maxRetries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(r.backoff(attempt)):
			}
		}
		retry, err := r.postOnce(ctx, body)
		if err == nil || !retry {
			return err
		}
		last = err
	}
	return fmt.Errorf("giving up after %d retries: %w", maxRetries, last)
}

// postOnce POSTs body once; retry says whether a failure may pass.
func (r *Recorder) postOnce(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.webhook, strings.NewReader(string(body)))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code < 300, code == http.StatusTooManyRequests:
		return false, nil
	case code >= 500 && code != http.StatusNotImplemented:
		return true, fmt.Errorf("events address answered %d", code)
	default:
		return false, fmt.Errorf("events address answered %d", code)
	}
}
