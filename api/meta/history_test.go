package meta

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHistoryUpsert: same digest and status update the snapshot and move
// it first; others are added first; at most HistoryMaxSize are kept.
func TestHistoryUpsert(t *testing.T) {
	var h History
	at := func(i int) metav1.Time { return metav1.NewTime(time.Unix(int64(1000+i), 0)) }
	d := metav1.Duration{Duration: time.Second}
	h.Upsert("a", at(0), d, "ok", nil)
	h.Upsert("b", at(1), d, "ok", nil)
	h.Upsert("a", at(2), d, "failed", nil)
	h.Upsert("a", at(3), d, "ok", map[string]string{"revision": "r"})
	if h.Latest().Digest != "a" || h.Latest().LastReconciledStatus != "ok" || h.Latest().TotalReconciliations != 2 ||
		!h.Latest().FirstReconciled.Equal(&metav1.Time{Time: at(0).Time}) || h.Latest().Metadata["revision"] != "r" {
		t.Fatalf("latest = %+v", h.Latest())
	}
	if len(h) != 3 || h[1].LastReconciledStatus != "failed" || h[2].Digest != "b" {
		t.Fatalf("history = %+v", h)
	}
	for i := 0; i < 10; i++ {
		h.Upsert(fmt.Sprint(i), at(10+i), d, "ok", nil)
	}
	if len(h) != HistoryMaxSize || h[0].Digest != "9" || h[4].Digest != "5" {
		t.Fatalf("history = %+v", h)
	}
	if (History{}).Latest() != nil {
		t.Fatal("empty history has a latest snapshot")
	}
}
