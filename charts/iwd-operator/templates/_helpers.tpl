{{- define "iwd-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "iwd-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "iwd-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "iwd-operator.serviceAccountName" -}}
{{- default (include "iwd-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "iwd-operator.apiKeySecret" -}}
{{- if .Values.iwd.apiKey.existingSecret -}}
{{- .Values.iwd.apiKey.existingSecret -}}
{{- else -}}
{{- printf "%s-iwd-api-key" (include "iwd-operator.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "iwd-operator.apiKeySecretKey" -}}
{{- if .Values.iwd.apiKey.existingSecret -}}
{{- .Values.iwd.apiKey.existingSecretKey -}}
{{- else -}}
api-key
{{- end -}}
{{- end -}}

{{/* The operator's rules, shared by the ClusterRole and the per-namespace Roles. */}}
{{- define "iwd-operator.rules" -}}
- apiGroups: [iwd.cxops.io]
  resources: [iwdtenants]
  verbs: [get, list, watch, patch]
- apiGroups: [iwd.cxops.io]
  resources: [iwdtenants/status]
  verbs: [patch]
- apiGroups: [iwd.cxops.io]
  resources: [iwdtenants/finalizers]
  verbs: [update]
# Reading referenced Secrets (GET) and watching Secret metadata. create and patch
# serve only the generated <tenant>-iwd-api-keys Secrets, but RBAC cannot narrow
# create (and patch of names not known in advance) to them.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{- define "iwd-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}
