#!/usr/bin/env bash
# The main job: the seed guide on an embedded local cluster. Builds a real
# kube-apiserver and etcd once (about 15 minutes the first time, cached
# after), then runs `lacre demo`: an age-encrypted Secret in a local Git
# repository, lacre's controllers, the GitRepository and Kustomization with
# SOPS decryption, the Secret read back decrypted, a change in Git followed.
# Arguments go to lacre demo: ./hack/demo.sh --keep leaves it all running.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v git >/dev/null || { echo "git is required" >&2; exit 1; }
echo "==> the local control plane (cached after the first build)"
dir=$(hack/k8s/build.sh | tail -n 1)
echo "==> lacre demo"
go run ./cmd/lacre-cluster demo --bin-dir "$dir" "$@"   # e.g. --keep
