{{/*
Names are fixed, not derived from the release name: the identities in webhook-config/ (the sync's ServiceAccount
among the storage writers, the Service the webhook configuration calls, the Certificate cert-manager injects) name
them, and one cluster runs one instance.
*/}}
{{- define "jobs-storage.labels" -}}
app.kubernetes.io/part-of: jobs-storage
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "jobs-storage.image" -}}
{{- if hasKey .Values.image "repository" }}
{{- fail "image.repository is gone: Toolforge's charts name the image image.name (without the tag) and image.tag" }}
{{- end }}
{{- if not .Values.image.name }}
{{- fail "image.name must name the image (registry/project/name, without the tag)" }}
{{- end }}
{{- if or (not .Values.image.tag) (eq (toString .Values.image.tag) "latest") }}
{{- fail "image.tag must name a published version (never empty or latest)" }}
{{- end }}
{{- printf "%s:%s" .Values.image.name (toString .Values.image.tag) }}
{{- end }}

{{/* A CEL list literal, as src/webhook/manifests.ts writes it (JSON string quoting, ", " between items). */}}
{{- define "jobs-storage.celList" -}}
{{- $items := list }}
{{- range . }}{{ $items = append $items (toJson .) }}{{ end }}
{{- printf "[%s]" (join ", " $items) }}
{{- end }}

{{/*
The config file both processes read. Fails on settings the chart's objects cannot honour: the phase ConfigMap and the
Lease live in the release namespace.
*/}}
{{- define "jobs-storage.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if ne $config.phase.namespace .Release.Namespace }}
{{- fail (printf "config.phase.namespace (%s) must be the release namespace (%s)" $config.phase.namespace .Release.Namespace) }}
{{- end }}
{{- if ne $config.sync.leaseNamespace .Release.Namespace }}
{{- fail (printf "config.sync.leaseNamespace (%s) must be the release namespace (%s)" $config.sync.leaseNamespace .Release.Namespace) }}
{{- end }}
{{- if .Values.webhook.clientCA.enabled }}
{{- $_ := set $config.webhook "clientCaFile" (printf "/etc/webhook/client-ca/%s" .Values.webhook.clientCA.key) }}
{{- end }}
{{- with .Values.imageConfig.configMap }}
{{- if $config.runtime.imageConfigFile }}
{{- fail "imageConfig.configMap and config.runtime.imageConfigFile are both set: name the ConfigMap and leave the file to the chart" }}
{{- end }}
{{- if not $.Values.imageConfig.key }}
{{- fail "imageConfig.key must name the ConfigMap's key holding images-v1.yaml" }}
{{- end }}
{{- $_ := set $config.runtime "imageConfigFile" (printf "%s/%s" (include "jobs-storage.imageConfigDir" $) $.Values.imageConfig.key) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* Where the sync pod mounts imageConfig.configMap: a directory of its own, so kubelet can swap its content. */}}
{{- define "jobs-storage.imageConfigDir" -}}
/etc/jobs-storage-image-config
{{- end }}

{{- define "jobs-storage.podSecurityContext" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "jobs-storage.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}
