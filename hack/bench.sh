#!/usr/bin/env bash
# make bench: runs the benchmarks (benches/operator/) and, for a full-size run,
# writes their output to docs/benchmarks.md with the machine they ran on.
#   hack/bench.sh            full size: 1,000 tenants, 10 minutes idle -> docs/benchmarks.md
#                            (its "bench" section, see hack/publish.sh)
#   hack/bench.sh --reduced  100 tenants (1,000 for memory), 10 s idle (CI), printed only
set -euo pipefail
cd "$(dirname "$0")/.."
out=""
if [[ "${1:-}" == "--reduced" ]]; then
  export BENCH_TENANTS="${BENCH_TENANTS:-100}" BENCH_IDLE_SECS="${BENCH_IDLE_SECS:-10}"
else
  export BENCH_TENANTS="${BENCH_TENANTS:-1000}" BENCH_IDLE_SECS="${BENCH_IDLE_SECS:-600}"
  # A partial run (BENCH_ONLY) is printed, never published.
  if [[ -z "${BENCH_ONLY:-}" ]]; then out=docs/benchmarks.md; fi
fi
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(hack/controlplane/build.sh)}"
results="$(mktemp)"
cargo bench --quiet --bench operator | tee "$results"
if [[ -n "$out" ]]; then
  {
    echo "- tenants: $BENCH_TENANTS, IWD simulator latency: ${BENCH_LATENCY_MS:-50} ms, idle window: $BENCH_IDLE_SECS s"
    cat "$results"
  } >"$results.doc"
  hack/publish.sh bench "$results.doc"
  rm -f "$results.doc"
fi
rm -f "$results"
