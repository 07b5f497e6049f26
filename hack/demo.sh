#!/usr/bin/env bash
# make demo: a local control plane + the IWD simulator + the operator + the
# example tenant. Shows the tenant becoming Ready, the call IWD received, and
# the deprovisioning on delete. Everything stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d -t iwd-demo-XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { echo; echo "==> $*"; }

step "building"
assets="${KUBEBUILDER_ASSETS:-$(hack/controlplane/build.sh)}"
cargo build --quiet --bins
bin="${CARGO_TARGET_DIR:-target}/debug"
kubectl() { "$assets/kubectl" --kubeconfig "$work/kubeconfig" "$@"; }

step "starting the control plane (etcd, kube-apiserver, kube-controller-manager)"
KUBEBUILDER_ASSETS="$assets" "$bin/testbed" "$work/kubeconfig" >"$work/testbed.log" 2>&1 &
pids+=($!)
until [[ -s "$work/kubeconfig" ]]; do
  sleep 0.2
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/testbed.log"; exit 1; }
done
grep "ready in" "$work/testbed.log" || true

step "starting the IWD simulator"
printf 'demo-admin-key' >"$work/iwd-api-key"
"$bin/iwd-simulator" --listen 127.0.0.1:0 --api-key-file "$work/iwd-api-key" >"$work/sim.out" 2>"$work/sim.log" &
pids+=($!)
until grep -q listening "$work/sim.out" 2>/dev/null; do sleep 0.1; done
iwd_url="$(awk '{print $NF}' "$work/sim.out")"
echo "IWD simulator at $iwd_url"

step "installing the CRD"
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/iwdtenants.iwd.cxops.io --timeout=30s

step "starting the operator (log: $work/operator.log)"
KUBECONFIG="$work/kubeconfig" "$bin/iwd-operator" run --iwd-url "$iwd_url" \
  --iwd-api-key-file "$work/iwd-api-key" --health-addr 127.0.0.1:0 >"$work/operator.log" 2>&1 &
pids+=($!)

step "kubectl apply -f examples/tenant.yaml"
kubectl apply -f examples/tenant.yaml
kubectl wait --for=condition=Ready iwdtenant/t100 --timeout=60s
kubectl get iwdtenants
kubectl get iwdtenant t100 -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'

calls() {
  python3 -c '
import json, sys, urllib.request
for c in json.load(urllib.request.urlopen(sys.argv[1] + "/_sim/calls")):
    print(" ", c["method"], c["path"] + ("?" + c["query"] if c["query"] else ""), "->", c["status"])
' "$iwd_url"
}
step "calls IWD received"
calls

step "kubectl delete iwdtenant t100"
kubectl delete iwdtenant t100 --timeout=60s
step "calls IWD received"
calls
step "events"
kubectl get events --field-selector involvedObject.kind=IwdTenant -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message
echo
echo "demo finished: the tenant was provisioned, then deprovisioned"
