#!/usr/bin/env bash
# Regenerates the API deep-copy functions and CRDs from the kubebuilder
# markers of api/. api/generated_test.go fails when they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cg() { go tool -modfile=hack/tools/go.mod controller-gen "$@"; }
cg object paths=./api/...
cg crd paths=./api/... output:crd:artifacts:config=config/crd/bases
