#!/usr/bin/env bash
# Builds the test bed's binaries from the pinned Go modules in this folder and
# prints the folder that holds them (the envtest convention: point
# KUBEBUILDER_ASSETS at it).
#
#   hack/controlplane/build.sh            # build if needed, print the folder
#
# The folder is keyed by a hash of the module files and this script, so a change
# of pins builds into a new folder and an unchanged tree is a no-op. It lives in
# IWD_TESTBED_CACHE (default: $XDG_CACHE_HOME or ~/.cache, under iwd-operator/).
# Go's own module and build caches make a rebuild after a pin change incremental.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${IWD_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iwd-operator/testbed}"
key="$(cat "$here/build.sh" "$here/go.mod" "$here/go.sum" "$here/helm/go.mod" "$here/helm/go.sum" \
  "$here/gitops/go.mod" "$here/gitops/go.sum" "$here/gitops/main.go" | sha256sum | cut -c1-12)"
kube_version="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
out="$cache_root/$kube_version-$key"
binaries=(kube-apiserver etcd kube-controller-manager kubectl helm gitops-check)

complete() {
  for b in "${binaries[@]}"; do [[ -x "$out/$b" ]] || return 1; done
}

if complete; then
  touch "$out"
  echo "$out"
  exit 0
fi

log() { echo "controlplane: $*" >&2; }
mkdir -p "$out.tmp"
start=$SECONDS

# Version stamps, as Kubernetes' hack/lib/version.sh sets them, so that /version
# and `kubectl version` report the pinned release. The build date is the date the
# release was tagged, which keeps the build reproducible.
kube_time="$(cd "$here" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
major="${kube_version#v}"; major="${major%%.*}"
minor="${kube_version#v*.}"; minor="${minor%%.*}"
kube_ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  kube_ldflags+=" -X '$pkg.gitVersion=$kube_version' -X '$pkg.gitMajor=$major'"
  kube_ldflags+=" -X '$pkg.gitMinor=$minor' -X '$pkg.gitTreeState=clean'"
  kube_ldflags+=" -X '$pkg.buildDate=$kube_time'"
done

log "building Kubernetes $kube_version binaries into $out (a cold build takes a while)"
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$kube_ldflags" -o "$out.tmp/" \
  ./cmd/kube-apiserver ./cmd/etcd ./cmd/kube-controller-manager ./cmd/kubectl)

helm_version="$(cd "$here/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v4)"
log "building helm $helm_version"
(cd "$here/helm" && CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X 'helm.sh/helm/v4/internal/version.version=$helm_version' -X 'helm.sh/helm/v4/internal/version.gitTreeState=clean'" \
  -o "$out.tmp/helm" .)

log "building gitops-check (kstatus and the Argo CD Lua VM)"
(cd "$here/gitops" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/gitops-check" .)

rm -rf "$out"
mv "$out.tmp" "$out"
# Folders of other pins not used for a week are dropped (each is ~370 MiB).
find "$cache_root" -mindepth 1 -maxdepth 1 -type d -name 'v*-*' ! -name "$(basename "$out")" -mtime +7 \
  -exec rm -rf {} + 2>/dev/null || true
log "built in $((SECONDS - start)) s"
echo "$out"
