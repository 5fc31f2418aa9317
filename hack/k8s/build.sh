#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from Go modules into a cache
# directory (once per machine; about 15 minutes on 2 cores the first time)
# and prints that directory on the last line. envtest takes it as
# KUBEBUILDER_ASSETS; internal/testcluster as LACRE_K8S_DIR.
#
# Progress goes to stderr: packages compiled out of the total and the time
# elapsed (one line that updates on a terminal, a line per 10% otherwise).
set -euo pipefail
cd "$(dirname "$0")"
dir=${LACRE_K8S_DIR:-$HOME/.cache/lacre-k8s/v1.37.2}
mkdir -p "$dir"
ok() { [ -x "$dir/$1" ] && "$dir/$1" --version >/dev/null 2>&1; }

# progress NAME TOTAL START: reads `go build -v` output (a package path per
# line as it is compiled), reports progress, passes every other line on.
progress() {
  local tty=0
  [ -t 2 ] && tty=1
  awk -v name="$1" -v total="$2" -v start="$3" -v tty="$tty" -v main="github.com/lacre/lacre/hack/k8s/$1" '
    function now() { srand(); return srand() }
    $0 == main {
      if (tty && n) printf "\n"
      printf "lacre-k8s: %s: %d/%d packages compiled, %ds; linking (a few minutes on a busy machine)...\n", name, n + 1, total, now() - start
      n++
      fflush()
      next
    }
    /^[^ :]+$/ {
      n++
      pct = total > 0 ? int(n * 100 / total) : 0
      if (tty) {
        printf "\rlacre-k8s: %s: %d/%d packages compiled, %ds\033[K", name, n, total, now() - start
      } else if (pct >= nextpct) {
        printf "lacre-k8s: %s: %d/%d packages compiled, %ds\n", name, n, total, now() - start
        nextpct = pct + 10
      }
      fflush()
      next
    }
    { if (tty && n) printf "\n"; print; fflush() }
    END { if (tty && n) printf "\n"; printf "lacre-k8s: %s: %d packages compiled, %d of %d from the Go build cache\n", name, n, (total > n ? total - n : 0), total }
  ' >&2
}

missing=()
for bin in etcd kube-apiserver; do
  if ok "$bin"; then
    echo "lacre-k8s: $bin is cached in $dir (cache hit: nothing to build)" >&2
  else
    missing+=("$bin")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
  # About 30 CPU-minutes for both (15 minutes measured on 2 cores), less
  # when Go's build cache already holds some packages.
  est=$(( (30 + cores - 1) / cores ))
  [ "$est" -lt 3 ] && est=3
  echo "lacre-k8s: building ${missing[*]} from Go modules: a first build takes about $est minutes on this machine's $cores cores; later runs use the cache and start in seconds" >&2
fi
for bin in ${missing[@]+"${missing[@]}"}; do
  start=$(date +%s)
  echo "lacre-k8s: $bin: listing its packages (downloads the modules the first time)..." >&2
  total=$(GOFLAGS=-mod=mod go list -deps "./$bin" | wc -l | tr -d ' ')
  GOFLAGS=-mod=mod go build -v -trimpath -o "$dir/$bin.tmp" "./$bin" 2>&1 | progress "$bin" "$total" "$start"
  mv "$dir/$bin.tmp" "$dir/$bin"
  echo "lacre-k8s: built $bin in $(( $(date +%s) - start ))s" >&2
done
echo "$dir"
