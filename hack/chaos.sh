#!/usr/bin/env bash
# make chaos: runs the chaos suite (tests/chaos.rs, #[ignore]d in `make test`)
# one scenario at a time, in the debug profile that `make test` builds.
#   hack/chaos.sh            full size (500-tenant rollouts, 2-minute IWD outage):
#                            the scenarios' tables go to docs/benchmarks.md
#                            (its "chaos" section, see hack/publish.sh)
#   hack/chaos.sh --reduced  CHAOS_SIZE=reduced (CI): printed only
# Fails if any scenario fails.
set -euo pipefail
cd "$(dirname "$0")/.."
publish=1
export CHAOS_SIZE=full
if [[ "${1:-}" == "--reduced" ]]; then
  CHAOS_SIZE=reduced
  publish=0
fi
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(hack/controlplane/build.sh)}"
CHAOS_REPORT_DIR="$(mktemp -d)"
export CHAOS_REPORT_DIR
trap 'rm -rf "$CHAOS_REPORT_DIR"' EXIT
start=$SECONDS
cargo test --test chaos -- --ignored --nocapture --test-threads=1
took=$((SECONDS - start))
# The sections, in scenario order (each test wrote its own NN.md).
report="$CHAOS_REPORT_DIR/report.md"
{
  echo "- size: $CHAOS_SIZE, wall time of the suite: $((took / 60)) min $((took % 60)) s"
  for section in "$CHAOS_REPORT_DIR"/[0-9][0-9].md; do
    echo
    cat "$section"
  done
} >"$report"
echo
echo "chaos suite ($CHAOS_SIZE) passed in ${took} s"
if [[ "$publish" == 1 ]]; then
  hack/publish.sh chaos "$report"
fi
