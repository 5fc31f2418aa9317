// Package controller owns lacre's reconcilers and their manager: the
// GitRepository controller (fetch Git, package and serve an artifact) and
// the Kustomization controller (build, decrypt, apply, prune, check
// health). A Kustomization reconcile runs in phases, one file each as
// kustomize-controller's: source.go, build.go, decrypt.go, apply.go,
// prune.go, health.go and status.go (conditions and the reconcile frame
// both controllers share). The rules it shares with the CLI live in
// internal/inventory (inventory IDs, what is applied and pruned),
// internal/decryptor (the decryption Secret) and internal/redact (what an
// error may show).
package controller
