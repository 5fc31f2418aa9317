#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from Go modules into a cache
# directory (once per machine; about 15 minutes on 2 cores the first time)
# and prints that directory on the last line. envtest takes it as
# KUBEBUILDER_ASSETS; internal/testcluster as LACRE_K8S_DIR.
set -euo pipefail
cd "$(dirname "$0")"
dir=${LACRE_K8S_DIR:-$HOME/.cache/lacre-k8s/v1.37.2}
mkdir -p "$dir"
ok() { [ -x "$dir/$1" ] && "$dir/$1" --version >/dev/null 2>&1; }
for bin in etcd kube-apiserver; do
  if ok "$bin"; then
    echo "lacre-k8s: $bin is cached in $dir" >&2
    continue
  fi
  echo "lacre-k8s: building $bin (the first build takes several minutes)..." >&2
  start=$(date +%s)
  GOFLAGS=-mod=mod go build -trimpath -o "$dir/$bin.tmp" "./$bin"
  mv "$dir/$bin.tmp" "$dir/$bin"
  echo "lacre-k8s: built $bin in $(( $(date +%s) - start ))s" >&2
done
echo "$dir"
