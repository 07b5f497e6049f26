#!/usr/bin/env bash
# Writes deploy/argocd/argocd-cm.yaml from the health check (make argocd-cm).
set -euo pipefail
cd "$(dirname "$0")/.."
script=deploy/argocd/iwd.cxops.io/IwdTenant/health.lua
{
  cat <<'HEAD'
# Argo CD health check for IwdTenant, ready to merge into the argocd-cm
# ConfigMap (kubectl -n argocd patch configmap argocd-cm --patch-file this-file).
# Generated from iwd.cxops.io/IwdTenant/health.lua by `make argocd-cm`; it uses
# only the Lua libraries Argo CD opens by default, so no useOpenLibs is needed.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
  resource.customizations.health.iwd.cxops.io_IwdTenant: |
HEAD
  while IFS= read -r line; do
    if [[ -z "$line" ]]; then echo; else echo "    $line"; fi
  done <"$script"
} >deploy/argocd/argocd-cm.yaml
