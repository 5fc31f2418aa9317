#!/usr/bin/env bash
# The whole test suite: installs what the tests need (once), then runs every
# test with the race detector and a short pass of every fuzz target.
#   ./hack/test.sh            everything
#   FUZZTIME=0 ./hack/test.sh skip the fuzz pass
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '==> %s\n' "$*" >&2; }

# Debian packages: gpg and age for interop tests, git for the source tests.
need=()
command -v gpg >/dev/null || need+=(gnupg)
command -v age >/dev/null || need+=(age)
command -v git >/dev/null || need+=(git)
# podman (and runc: crun refuses hybrid cgroup hierarchies) run the release
# image in internal/release's TestImageRunsControllers.
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    log "missing ${need[*]} and not root: the tests that need them will be skipped"
  fi
fi

# The real sops CLI, the interop oracle.
gobin=$(go env GOPATH)/bin
export PATH="$gobin:$PATH"
if ! sops --version 2>/dev/null | grep -q '3.13.3'; then
  log "installing sops v3.13.3 (go install; a few minutes the first time)"
  go install github.com/getsops/sops/v3/cmd/sops@v3.13.3
fi

# The SBOM generator of the release (internal/release's tests use it).
if ! command -v cyclonedx-gomod >/dev/null; then
  log "installing cyclonedx-gomod v1.10.0 (go install)"
  GOFLAGS= go install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0
fi

# A real kube-apiserver and etcd, built from Go modules once per machine.
if [ -x hack/k8s/build.sh ]; then
  log "building the local control plane (cached after the first run)"
  KUBEBUILDER_ASSETS=$(hack/k8s/build.sh | tail -n 1)
  export KUBEBUILDER_ASSETS LACRE_K8S_DIR="$KUBEBUILDER_ASSETS"
fi

log "go vet"
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2; echo "$unformatted" >&2; exit 1
fi

log "go test -race"
go test -race -count=1 -timeout 45m ./...

fuzztime=${FUZZTIME:-5s}
if [ "$fuzztime" != 0 ]; then
  log "fuzzing each target for $fuzztime"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
      # A crash is saved under testdata/fuzz and fails every re-run at
      # once (the saved input is replayed first); Go's harness sometimes
      # ends a run on a loaded machine with "context deadline exceeded" and
      # nothing saved, which a re-run does not repeat. Three attempts.
      log_file=$(mktemp)
      attempt=1
      until go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log_file" 2>&1; do
        echo "fuzz target $target in $pkg failed (attempt $attempt):" >&2
        tail -n 20 "$log_file" >&2
        if [ "$attempt" -ge 3 ]; then rm -f "$log_file"; exit 1; fi
        attempt=$((attempt + 1))
      done
      rm -f "$log_file"
    done
  done
fi
log "all tests passed"
