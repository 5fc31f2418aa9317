package events

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
)

// receiver is a local events address: it answers with codes in turn (then
// 202) and keeps the events it accepted.
type receiver struct {
	mu       sync.Mutex
	codes    []int
	attempts int
	got      []Event
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	code := http.StatusAccepted
	if len(rc.codes) > 0 {
		code, rc.codes = rc.codes[0], rc.codes[1:]
	}
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		code = http.StatusBadRequest
	}
	if code == http.StatusAccepted {
		var ev Event
		data, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(data, &ev); err != nil {
			code = http.StatusBadRequest
		} else {
			rc.got = append(rc.got, ev)
		}
	}
	w.WriteHeader(code)
}

func (rc *receiver) state() (int, []Event) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.attempts, append([]Event(nil), rc.got...)
}

func newTestRecorder(t *testing.T, rc *receiver) (*Recorder, *record.FakeRecorder) {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	fake := record.NewFakeRecorder(10)
	fake.IncludeObject = true
	r, err := NewRecorder(fake, scheme.Scheme, Options{Address: srv.URL + "/", Controller: "kustomize-controller", Instance: "pod-0", Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	r.backoff = func(int) time.Duration { return time.Millisecond }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go r.Start(ctx)
	return r, fake
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecorderPostsFluxEvents(t *testing.T) {
	rc := &receiver{codes: []int{http.StatusServiceUnavailable, http.StatusBadGateway}}
	r, fake := newTestRecorder(t, rc)
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm", UID: "u1",
		Annotations: map[string]string{Group + "/token": "t", "other/key": "x"}}}
	r.AnnotatedEventf(obj, map[string]string{"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc"}, corev1.EventTypeWarning, "BuildFailed", "failed: %s", "why")
	waitFor(t, func() bool { _, got := rc.state(); return len(got) == 1 })
	attempts, got := rc.state()
	if attempts != 3 {
		t.Errorf("attempts = %d, want 3 (two 5xx retried)", attempts)
	}
	ev := got[0]
	if ev.InvolvedObject.Kind != "ConfigMap" || ev.InvolvedObject.Namespace != "ns" || ev.InvolvedObject.Name != "cm" || ev.InvolvedObject.UID != "u1" {
		t.Errorf("involvedObject = %+v", ev.InvolvedObject)
	}
	if ev.Severity != SeverityError || ev.Reason != "BuildFailed" || ev.Message != "failed: why" ||
		ev.ReportingController != "kustomize-controller" || ev.ReportingInstance != "pod-0" || ev.Timestamp.IsZero() {
		t.Errorf("event = %+v", ev)
	}
	want := map[string]string{"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc", Group + "/token": "t"}
	if len(ev.Metadata) != len(want) || ev.Metadata["kustomize.toolkit.fluxcd.io/revision"] != want["kustomize.toolkit.fluxcd.io/revision"] || ev.Metadata[Group+"/token"] != "t" {
		t.Errorf("metadata = %v, want %v", ev.Metadata, want)
	}
	if k8s := <-fake.Events; !strings.Contains(k8s, "Warning BuildFailed failed: why") || !strings.Contains(k8s, "main@sha1:abc") {
		t.Errorf("Kubernetes event = %q", k8s)
	}
}

func TestRecorderRetryRules(t *testing.T) {
	// 429 (a duplicate) and 4xx are not retried; trace events are not sent.
	rc := &receiver{codes: []int{http.StatusTooManyRequests, http.StatusBadRequest}}
	r, fake := newTestRecorder(t, rc)
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}}
	r.Event(obj, TypeTrace, "ArtifactUpToDate", "trace only")
	r.Event(obj, corev1.EventTypeNormal, "A", "one")
	r.Event(obj, corev1.EventTypeNormal, "B", "two")
	r.Event(obj, corev1.EventTypeNormal, "C", "three")
	waitFor(t, func() bool { _, got := rc.state(); return len(got) == 1 })
	attempts, got := rc.state()
	if attempts != 3 || got[0].Reason != "C" || got[0].Severity != SeverityInfo {
		t.Errorf("attempts = %d, got %+v", attempts, got)
	}
	if k8s := <-fake.Events; !strings.Contains(k8s, "Normal ArtifactUpToDate trace only") {
		t.Errorf("trace event = %q", k8s)
	}
}

func TestValidateAddress(t *testing.T) {
	for _, bad := range []string{"notification-controller", "ftp://x/", "http://", "://x"} {
		if err := ValidateAddress(bad); err == nil || !strings.Contains(err.Error(), "--events-addr") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
	for _, good := range []string{"", "http://notification-controller.flux-system.svc.cluster.local./", "https://n:9292/"} {
		if err := ValidateAddress(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}
