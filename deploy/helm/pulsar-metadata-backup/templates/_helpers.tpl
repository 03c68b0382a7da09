{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "pmb.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pmb.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pmb.labels" -}}
{{ include "pmb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* "true" or "false" for a value that may be a bool or a string, as StreamNative's values write it. */}}
{{- define "pmb.bool" -}}
{{- eq (toString .) "true" -}}
{{- end -}}

{{- define "pmb.serviceAccountName" -}}
{{- $sa := .Values.customTools.serviceAccount -}}
{{- if eq (include "pmb.bool" $sa.use) "true" -}}
{{- default (include "pmb.fullname" .) $sa.name -}}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{/* The Secret with the AWS keys, or "" for the AWS SDK's default chain. One worker does
backups and restores, so there is one: the backup's, else the restore's. */}}
{{- define "pmb.awsSecret" -}}
{{- $b := .Values.customTools.backup.secrets -}}
{{- $r := .Values.customTools.restore.secrets -}}
{{- if eq (include "pmb.bool" $b.use) "true" -}}
{{- required "customTools.backup.secrets.secretName is required when customTools.backup.secrets.use is true" $b.secretName -}}
{{- else if eq (include "pmb.bool" $r.use) "true" -}}
{{- required "customTools.restore.secrets.secretName is required when customTools.restore.secrets.use is true" $r.secretName -}}
{{- end -}}
{{- end -}}

{{- define "pmb.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "pmb.configDir" -}}/etc/pulsar-metadata-backup{{- end -}}
{{- define "pmb.zkAuthDir" -}}/etc/pulsar-metadata-backup/zookeeper{{- end -}}
{{- define "pmb.stagingDir" -}}/var/lib/pulsar-metadata-backup/staging{{- end -}}

{{/* The config file the binaries read (see config.example.yaml). No secret goes here:
zookeeper.authFile names the mounted Secret, and AWS keys come as environment variables. */}}
{{- define "pmb.config" -}}
{{- $b := .Values.customTools.backup -}}
{{- $r := .Values.customTools.restore -}}
zookeeper:
  servers: {{ required "zookeeper.servers is required" .Values.zookeeper.servers | quote }}
  sessionTimeout: {{ .Values.zookeeper.sessionTimeout | toString | quote }}
{{- if .Values.zookeeper.auth.secretName }}
  authFile: {{ printf "%s/auth" (include "pmb.zkAuthDir" .) | quote }}
{{- end }}
temporal:
  hostPort: {{ .Values.temporal.hostPort | quote }}
  namespace: {{ .Values.temporal.namespace | quote }}
  taskQueue: {{ .Values.temporal.taskQueue | quote }}
s3:
  endpoint: {{ .Values.s3.endpoint | quote }}
  region: {{ .Values.s3.region | quote }}
  forcePathStyle: {{ include "pmb.bool" .Values.s3.forcePathStyle }}
backup:
  enable: {{ include "pmb.bool" $b.enable }}
  webServerPort: {{ $b.webServerPort | int }}
  backupInterval: {{ $b.backupInterval | int }}
  bucket: {{ $b.bucket | quote }}
  backupPrefix: {{ $b.backupPrefix | quote }}
  managedLedgerPath: {{ $b.managedLedgerPath | quote }}
  stagingDir: {{ include "pmb.stagingDir" . | quote }}
restore:
  enable: {{ include "pmb.bool" $r.enable }}
  restorePoint: {{ $r.restorePoint | default "" | quote }}
  restoreVersion: {{ $r.restoreVersion | toString | quote }}
  bucket: {{ $r.bucket | default "" | quote }}
worker:
  metricsPort: {{ .Values.worker.metricsPort | int }}
retryWindow: {{ .Values.retryWindow | toString | quote }}
{{- end -}}

{{/* The pod spec parts the worker and the API share. */}}
{{- define "pmb.podCommon" -}}
serviceAccountName: {{ include "pmb.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Container parts the worker and the API share: image, config, AWS keys, security. */}}
{{- define "pmb.containerCommon" -}}
image: {{ include "pmb.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- with include "pmb.awsSecret" . }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end -}}

{{- define "pmb.volumeMounts" -}}
- name: config
  mountPath: {{ include "pmb.configDir" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.zookeeper.auth.secretName }}
- name: zookeeper-auth
  mountPath: {{ include "pmb.zkAuthDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "pmb.volumes" -}}
- name: config
  configMap:
    name: {{ include "pmb.fullname" . }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.zookeeper.auth.secretName }}
- name: zookeeper-auth
  secret:
    secretName: {{ .Values.zookeeper.auth.secretName }}
    defaultMode: 0440
    items:
      - key: {{ .Values.zookeeper.auth.secretKey }}
        path: auth
{{- end }}
{{- end -}}

{{- define "pmb.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}
