package controller

import (
	"encoding/json"

	"sigs.k8s.io/controller-runtime/pkg/event"
)

type eventUpdate = event.UpdateEvent

func equalJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
