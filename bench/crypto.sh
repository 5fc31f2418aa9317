#!/usr/bin/env bash
# Times lacre against the real sops CLI on the same files in the same run
# (Go's benchmark harness, whole processes) and prints the ratios.
#   ./bench/crypto.sh [-count N]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench '^Benchmark(Decrypt1MB|Encrypt1MB|Decrypt100Files|Encrypt100Files)$' -benchtime "${BENCHTIME:-5x}" "$@" ./bench/crypto | tee "$out"
# 1,000 files: one pass (sops runs 1,000 processes, about a minute).
go test -run '^$' -bench '^BenchmarkDecrypt1000Files$' -benchtime 1x ./bench/crypto | tee -a "$out"
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), sops $(sops --version 2>/dev/null | head -1 | awk '{print $2}')"
awk '
  /^Benchmark/ {
    split($1, p, "/"); name = p[1]; sub(/-[0-9]+$/, "", p[2]); tool = p[2]; sub(/tool=/, "", tool)
    for (i = 2; i <= NF; i++) { if ($(i+1) == "ns/op") ns[name, tool] = $i; if ($(i+1) == "peak-RSS-MB") rss[name, tool] = $i }
    names[name] = 1
  }
  END {
    printf "%-28s %12s %12s %8s %14s %14s\n", "benchmark", "lacre", "sops", "speedup", "lacre peak RSS", "sops peak RSS"
    for (n in names) {
      l = ns[n, "lacre"]; s = ns[n, "sops"]
      if (l == "" ) continue
      if (s == "") { printf "%-28s %10.1fms %12s %8s %12s MB\n", n, l/1e6, "-", "-", rss[n, "lacre"]; continue }
      printf "%-28s %10.1fms %10.1fms %7.1fx %11s MB %11s MB\n", n, l/1e6, s/1e6, s/l, rss[n, "lacre"], rss[n, "sops"]
    }
  }' "$out"
