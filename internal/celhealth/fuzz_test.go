package celhealth

import (
	"context"
	"testing"
)

// FuzzReadyExpr compiles and evaluates arbitrary expressions (tenant
// input): no panic, and evaluation stays within its bounds.
func FuzzReadyExpr(f *testing.F) {
	for _, s := range []string{"true", "dep.status.ready == true", "self.metadata.name == dep.metadata.name", "[1,2,3].all(x, x > 0)", "'a' * 3", "dep.x.y.z", ")", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := ReadyExpr(src)
		if err != nil {
			return
		}
		self := map[string]any{"metadata": map[string]any{"name": "a"}}
		dep := map[string]any{"metadata": map[string]any{"name": "b"}, "status": map[string]any{"ready": true}}
		_, _ = e.Ready(context.Background(), self, dep)
	})
}
