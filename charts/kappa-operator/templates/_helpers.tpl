{{/* The names are fixed, as in the kustomize base: one operator per cluster (the CRDs are cluster-wide). */}}
{{- define "kappa-operator.selectorLabels" -}}
app.kubernetes.io/name: kappa-operator
{{- end }}

{{- define "kappa-operator.labels" -}}
{{ include "kappa-operator.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/*
The operator's rules: the same as the ClusterRole in manifests/10-rbac.yaml, which says why each one is there
(operator/tests/integration/test_install.py compares them). With watchNamespaces, the rules on
apiextensions.k8s.io stay in a ClusterRole and the others go to a Role in each namespace.
*/}}
{{- define "kappa-operator.rules" -}}
# Each verb below is needed by the behaviour its comment names; operator/tests/integration/test_rbac.py removes
# each one in turn and shows that behaviour failing with 403, and docs/rbac.md lists them all. A verb that no
# behaviour needs goes. No wildcard, no write on Secrets, no pods/exec.
#
# Our own kinds. get: a look reads its object fresh (Kube.get). list, watch: Kopf's streams, which feed the
# handlers and the indexes (controllers/watches.py), cluster-wide.
- apiGroups: [kappa.dev]
  resources: [streamjobs, replayruns, materializedviews]
  verbs: [get, list, watch]
# Kopf's finalizer `kappa.dev/finalizer` (merge patch of metadata.finalizers): a final savepoint before a
# StreamJob goes; a ReplayRun deleted before its cutover removes what it created. MaterializedViews have no
# finalizer and get no patch, so the operator cannot write their spec, labels or annotations even by mistake.
# A ReplayRun's spec is immutable by CEL whoever writes it.
- apiGroups: [kappa.dev]
  resources: [streamjobs, replayruns]
  verbs: [patch]
# strategy replay: a StreamJob's new version is a ReplayRun the operator creates (server-side apply, which
# needs create as well as patch for an object that does not exist yet).
- apiGroups: [kappa.dev]
  resources: [replayruns]
  verbs: [create]
# Status and conditions (Kube.patch_status), and Kopf's own records in status.kopf: merge patches only.
- apiGroups: [kappa.dev]
  resources: [streamjobs/status, replayruns/status, materializedviews/status]
  verbs: [patch]
# Kopf lists and follows CRDs, so that a kind installed after the operator started (FKO's, Strimzi's) is
# served without a restart.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
# Events on our objects (adapters/events.py, kopf.event): create; a repeated event is one Event whose count
# and lastTimestamp are patched, as client-go's recorder does. Only core/v1 Events are written.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
# A version's FlinkDeployment (FKO): server-side apply (create, patch) of a new version, an upgrade, a
# suspension; get in a look; list, watch for the flinkdeployments_by_job index that wakes its StreamJob;
# delete of a retired version or a canary.
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments]
  verbs: [get, list, watch, create, patch, delete]
# Savepoints as FlinkStateSnapshots: the final savepoint at a StreamJob's deletion and a savepoint's disposal
# are applied (create, patch), read back (get) and, once disposed of, deleted. Never listed or watched.
- apiGroups: [flink.apache.org]
  resources: [flinkstatesnapshots]
  verbs: [get, create, patch, delete]
# A version's output topic as a Strimzi KafkaTopic: server-side apply (create, patch); delete when a
# replay is abandoned or a retired version's output goes; list, watch: a topic turning Ready wakes its
# StreamJob (controllers/watches.py).
- apiGroups: [kafka.strimzi.io]
  resources: [kafkatopics]
  verbs: [list, watch, create, patch, delete]
# clusterRef: the bootstrap servers a Strimzi Kafka reports in its status.listeners, read by name.
- apiGroups: [kafka.strimzi.io]
  resources: [kafkas]
  verbs: [get]
# clusterRef with a KafkaUser: the Kafka credentials are read from the Secret of the Strimzi KafkaUser the
# spec names (read by name only; the operator never creates or changes KafkaUsers).
- apiGroups: [kafka.strimzi.io]
  resources: [kafkausers]
  verbs: [get]
# A ConfigMap-backed MaterializedView's pointer: get, create the first time, update (a compare-and-swap on
# its resourceVersion) at a cutover. The session runtime's record per version
# (`{job}-{version}.flink-session`): get, create, update, list by label, delete when a version goes.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, update, delete]
# Secrets are read only where a spec names them, one by one by that name (get): a MaterializedView's
# spec.backend.postgres.secretRef; a StreamJob's spec.runtime.session.credentialsRef and its Kafka
# credentials and CAs (spec.source.kafka); with clusterRef, the Secret of the KafkaUser it names
# (status.secret) and a TLS listener's cluster CA (`{clusterRef}-cluster-ca-cert`, Strimzi's name).
# No list, no watch, no write.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# One ReplayRun at a time holds a MaterializedView: the Lease `{view}.view-claim` in the view's namespace is
# read (get), taken by create (atomic) and handed over by update with its resourceVersion (a compare-and-swap).
# No delete: the garbage collector removes it with the run that owns it.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end }}

{{- define "kappa-operator.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
