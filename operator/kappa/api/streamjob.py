"""StreamJob: a long-running Flink job with versions, savepoint upgrades, canary and automatic rollback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from kappa.api.base import (
    MAX_TABLE_BASE,
    MAX_TOPIC_BASE,
    Bounds,
    CommonStatus,
    Deadline,
    Duration,
    KappaModel,
    ObjectName,
    SqlStatement,
    TableBase,
    TopicBase,
    TopicName,
    VersionName,
    cel,
    defaulted,
    exactly_one,
    validated,
)
from kappa.api.passthrough import (
    FKO_FORBIDDEN_CONFIGURATION,
    HA_CONFIGURATION,
    LOG_CONFIG_FILES,
    MAIN_CONTAINER,
    EnvFromSource,
    EnvVar,
    HighAvailability,
    PodTemplate,
)

FlinkVersion = Literal[
    "v1_15", "v1_16", "v1_17", "v1_18", "v1_19", "v1_20", "v2_0", "v2_1", "v2_2", "v2_3", "v2_4"
]
StreamJobPhase = Literal[
    "Pending", "Deploying", "Running", "Upgrading", "Canary", "RollingBack", "Suspended", "Failed"
]


SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class PasswordSecretSource(KappaModel):
    """A password in a Secret of the job's namespace (Strimzi's PasswordSecretSource)."""

    secret_name: ObjectName = Field(description="The Secret, in the StreamJob's namespace.")
    password: SecretKey = Field(description="The key in the Secret under which the password is stored.")


class CertAndKeySecretSource(KappaModel):
    """A client certificate and its private key in a Secret (Strimzi's CertAndKeySecretSource)."""

    secret_name: ObjectName = Field(description="The Secret, in the StreamJob's namespace.")
    certificate: SecretKey = Field(description="The key in the Secret holding the PEM certificate, user.crt.")
    key: SecretKey = Field(description="The key in the Secret holding the PEM private key, e.g. user.key.")


class CertSecretSource(KappaModel):
    """A CA certificate in a Secret (Strimzi's CertSecretSource)."""

    secret_name: ObjectName = Field(description="The Secret, in the StreamJob's namespace.")
    certificate: SecretKey = Field(description="The key in the Secret holding the PEM certificate (ca.crt).")


class KafkaClientAuthentication(KappaModel):
    """How the operator authenticates to Kafka, in the shapes of Strimzi's
    KafkaClientAuthenticationScramSha512, KafkaClientAuthenticationPlain and KafkaClientAuthenticationTls."""

    model_config = validated(
        cel(
            "self.type != 'scram-sha-512' || (has(self.username) && has(self.passwordSecret))",
            "username and passwordSecret are required for type scram-sha-512",
            reason="FieldValueRequired",
        ),
        cel(
            "self.type != 'plain' || (has(self.username) && has(self.passwordSecret))",
            "username and passwordSecret are required for type plain",
            reason="FieldValueRequired",
        ),
        cel(
            "self.type != 'tls' || has(self.certificateAndKey)",
            "certificateAndKey is required for type tls",
            reason="FieldValueRequired",
        ),
        cel(
            "self.type == 'tls' || !has(self.certificateAndKey)",
            "certificateAndKey is only for type tls",
        ),
        cel(
            "self.type != 'tls' || (!has(self.username) && !has(self.passwordSecret))",
            "username and passwordSecret are not for type tls (the certificate names the user)",
        ),
    )

    type: Literal["scram-sha-512", "plain", "tls"] = Field(
        description="scram-sha-512 (SASL SCRAM-SHA-512), plain (SASL PLAIN) or tls (a client certificate; "
        "needs tls on the connection)."
    )
    username: str | None = Field(
        default=None, min_length=1, max_length=256, description="The SASL user, for scram-sha-512 and plain."
    )
    password_secret: PasswordSecretSource | None = Field(
        default=None,
        description="Where the SASL password is, for scram-sha-512 and plain. Read when the operator "
        "connects; never copied into status, events, logs or metrics.",
    )
    certificate_and_key: CertAndKeySecretSource | None = Field(
        default=None, description="The client certificate and key, for tls."
    )


class ClientTls(KappaModel):
    """TLS to the brokers (Strimzi's ClientTls)."""

    trusted_certificates: list[CertSecretSource] = Field(
        default_factory=list,
        max_length=16,
        description="CA certificates the brokers' certificates are checked against; empty: the system's CAs.",
    )


class KafkaCluster(KappaModel):
    """Where the Kafka cluster is (a Strimzi `Kafka` by name, or bootstrap servers), and how the operator's
    own clients (admin, lag, seeding, quotas) connect to it. The Flink job's own connection is not set here:
    pass it through spec.flink."""

    model_config = validated(
        cel(
            exactly_one(["clusterRef", "bootstrapServers"]),
            "exactly one of clusterRef or bootstrapServers must be set",
        ),
        cel("!has(self.listener) || has(self.clusterRef)", "listener needs clusterRef"),
        cel("!has(self.kafkaUser) || has(self.clusterRef)", "kafkaUser needs clusterRef"),
        cel(
            "!has(self.kafkaUser) || !has(self.authentication)",
            "at most one of kafkaUser or authentication may be set",
        ),
        cel(
            "!has(self.authentication) || self.authentication.type != 'tls' || has(self.tls) "
            "|| has(self.clusterRef)",
            "authentication type tls needs tls",
        ),
    )

    cluster_ref: ObjectName | None = Field(
        default=None,
        description="Name of a Strimzi `Kafka` resource; topics get its strimzi.io/cluster label.",
    )
    bootstrap_servers: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^[^,\s]+(,[^,\s]+)*$",
        description="Comma-separated host:port list, for Kafka not managed by Strimzi.",
    )
    namespace: ObjectName | None = Field(
        default=None, description="Namespace of the Strimzi Kafka cluster; defaults to the job's namespace."
    )
    listener: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]{1,11}$",
        description="With clusterRef: the Strimzi listener to connect through, by its name in the Kafka's "
        "spec.kafka.listeners (and status.listeners). Default: the first in status.listeners. A listener "
        "with tls: true is reached over TLS, trusting the Secret {cluster}-cluster-ca-cert (key ca.crt).",
    )
    kafka_user: ObjectName | None = Field(
        default=None,
        description="With clusterRef: a Strimzi `KafkaUser` in the Kafka's namespace whose Secret "
        "(status.secret) holds the credentials: key password for scram-sha-512, user.crt and user.key for "
        "tls.",
    )
    authentication: KafkaClientAuthentication | None = Field(
        default=None, description="SASL or TLS client authentication, with credentials from Secrets."
    )
    tls: ClientTls | None = Field(
        default=None,
        description="Connect over TLS; with clusterRef, also implied by the listener's tls: true.",
    )


class StartingPosition(KappaModel):
    """Where the first version starts reading: exactly one of latest, earliest or timestamp."""

    model_config = validated(
        cel(
            exactly_one(["latest", "earliest", "timestamp"]),
            "exactly one of latest, earliest or timestamp must be set",
        )
    )

    latest: Literal[True] | None = Field(default=None, description="Start at the end of the log.")
    earliest: Literal[True] | None = Field(default=None, description="Start at the start of the log.")
    timestamp: datetime | None = Field(
        default=None, description="Start at the first record at or after this time (RFC 3339)."
    )


class Source(KappaModel):
    """The Kafka input of the job."""

    kafka: KafkaCluster = Field(description="The Kafka cluster to read from.")
    topics: list[TopicName] = Field(min_length=1, max_length=32, description="Input topics.")
    starting_position: StartingPosition = Field(
        default_factory=lambda: StartingPosition(latest=True),
        description="Start position for the first deploy only; later versions start from savepoints.",
        json_schema_extra={"default": {"latest": True}},
    )


class TopicOutput(KappaModel):
    """A versioned output topic `{base}.{version}`, created per version."""

    base: TopicBase = Field(
        description="Base topic name; each version writes `{base}.{version}` (a canary "
        f"`{{base}}.{{version}}-canary`). Lowercase, at most {MAX_TOPIC_BASE} characters, so that every "
        "derived topic fits Kafka's 249."
    )
    partitions: int = Field(default=1, ge=1, le=10000, description="Partitions of each versioned topic.")
    replicas: int = Field(default=1, ge=1, le=32, description="Replication factor of each versioned topic.")
    config: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Topic configs, e.g. retention.ms."
    )


class TableOutput(KappaModel):
    """A versioned output table `{base}_{version}`."""

    base: TableBase = Field(
        description="Base table name; each version writes `{base}_{version}` (a canary "
        f"`{{base}}_{{version}}_canary`). At most {MAX_TABLE_BASE} characters, so that every derived table "
        "fits PostgreSQL's 63-byte identifiers."
    )


class Output(KappaModel):
    """What the job writes. At least one of topic or table."""

    model_config = validated(
        cel("has(self.topic) || has(self.table)", "at least one of topic or table must be set")
    )

    topic: TopicOutput | None = Field(default=None, description="Versioned Kafka output.")
    table: TableOutput | None = Field(default=None, description="Versioned table output.")
    view: ObjectName | None = Field(
        default=None, description="A MaterializedView in this namespace that serves this output to readers."
    )
    deletion_policy: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="What happens to versioned outputs when the StreamJob is deleted. Retain keeps them.",
    )


class Resources(KappaModel):
    """CPU and memory of a Flink process, as FKO takes them."""

    cpu: float = Field(default=1.0, gt=0, le=64, description="CPU cores.")
    memory: str = Field(
        default="1024m",
        max_length=16,
        pattern=r"^[0-9]+(\.[0-9]+)?([kmgKMG]i?|[kmg]b)?$",
        description="Memory.",
    )


class JobManagerResources(Resources):
    """The JobManager: CPU, memory and its own pod template."""

    pod_template: PodTemplate | None = Field(
        default=None,
        description="FKO's jobManager.podTemplate: the JobManager pod's template, which FKO merges over "
        "spec.flink.podTemplate (this one wins).",
    )


class TaskManagerResources(Resources):
    """The TaskManagers: CPU, memory, replicas and their own pod template."""

    replicas: int = Field(default=1, ge=1, le=256, description="TaskManager replicas.")
    pod_template: PodTemplate | None = Field(
        default=None,
        description="FKO's taskManager.podTemplate: the TaskManager pods' template, which FKO merges over "
        "spec.flink.podTemplate (this one wins).",
    )


class FlinkSpec(KappaModel):
    """Passed through to the Flink job. The job is a jar (jarURI) or Flink SQL statements (sql)."""

    model_config = validated(
        cel(exactly_one(["jarURI", "sql"]), "exactly one of jarURI or sql must be set"),
        cel(
            "!has(self.entryClass) || has(self.jarURI)",
            "entryClass needs jarURI",
            field_path=".entryClass",
        ),
        cel(
            "!has(self.highAvailability) || !has(self.flinkConfiguration) || !"
            + repr(list(HA_CONFIGURATION)).replace('"', "'")
            + ".exists(k, k in self.flinkConfiguration)",
            "flinkConfiguration must not set " + ", ".join(HA_CONFIGURATION) + " when highAvailability "
            "is set: highAvailability sets them",
            field_path=".flinkConfiguration",
        ),
    )

    image: str = Field(min_length=1, max_length=512, description="Container image with the job and Flink.")
    flink_version: FlinkVersion = Field(default="v2_0", description="FKO flinkVersion of the image.")
    jar_uri: str | None = Field(
        default=None,
        alias="jarURI",
        max_length=1024,
        description="Job jar, e.g. local:///opt/flink/usrlib/job.jar.",
    )
    entry_class: str | None = Field(default=None, max_length=512, description="Main class of the jar.")
    args: list[str] = Field(default_factory=list, max_length=64, description="Program arguments.")
    sql: list[SqlStatement] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Flink SQL statements, none empty. ${KAPPA_*} variables are substituted per version.",
    )
    parallelism: int = Field(default=1, ge=1, le=1024, description="Job parallelism.")
    flink_configuration: dict[str, str] = Field(
        default_factory=dict,
        max_length=256,
        description="Flink configuration passed to FKO.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!" + repr(list(FKO_FORBIDDEN_CONFIGURATION)).replace('"', "'") + ".exists(k, k in self)",
                    "must not set " + ", ".join(FKO_FORBIDDEN_CONFIGURATION) + ": FKO sets them itself and "
                    "refuses a FlinkDeployment that does",
                    reason="FieldValueForbidden",
                )
            ]
        },
    )
    job_manager: JobManagerResources = defaulted(
        JobManagerResources, "The JobManager: resources and pod template."
    )
    task_manager: TaskManagerResources = defaulted(
        TaskManagerResources, "The TaskManagers: resources, replicas and pod template."
    )
    service_account: ObjectName = Field(default="flink", description="ServiceAccount of the Flink pods.")
    pod_template: PodTemplate | None = Field(
        default=None,
        description="FKO's podTemplate: the base pod template of the JobManager and TaskManager pods, e.g. "
        "volumes, sidecars, node selectors, security context. jobManager.podTemplate and "
        "taskManager.podTemplate are merged over it by FKO. The operator adds env and envFrom to its "
        f"{MAIN_CONTAINER} container.",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=128,
        description=f"Environment of Flink's container ({MAIN_CONTAINER}) in every JobManager and "
        "TaskManager pod, as core/v1 EnvVars: a value, or valueFrom a Secret, ConfigMap or pod field. "
        "Rendered into podTemplate; a variable of the same name there is replaced.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    env_from: list[EnvFromSource] = Field(
        default_factory=list,
        max_length=16,
        description=f"Every key of a Secret or ConfigMap as a variable of {MAIN_CONTAINER}, after those of "
        "podTemplate's container.",
    )
    log_configuration: dict[str, str] = Field(
        default_factory=dict,
        max_length=len(LOG_CONFIG_FILES),
        description="FKO's logConfiguration: log configuration file name → content, replacing the one FKO "
        "ships, e.g. log4j-console.properties.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.all(k, k in " + repr(list(LOG_CONFIG_FILES)).replace('"', "'") + ")",
                    "keys must be " + " or ".join(LOG_CONFIG_FILES) + ": the only files FKO writes",
                    reason="FieldValueInvalid",
                )
            ]
        },
    )
    high_availability: HighAvailability | None = Field(
        default=None,
        description="Kubernetes high availability: flinkConfiguration high-availability.type kubernetes "
        "(high-availability before Flink 1.17) and high-availability.storageDir.",
    )
    allow_non_restored_state: bool = Field(
        default=False,
        description="FKO's job.allowNonRestoredState: start from a savepoint even if some of its state "
        "belongs to no operator of the new version (an operator removed, or its uid changed); that state is "
        "dropped.",
    )


class CanarySpec(KappaModel):
    """Canary analysis: the candidate runs beside stable with its own group and a shadow output."""

    duration: Deadline = Field(
        default="10m", description="How long to analyse before deciding; more than 0s."
    )
    max_restarts: int = Field(default=0, ge=0, le=100, description="Candidate restarts allowed.")
    max_lag_records: int = Field(default=10000, ge=0, description="Candidate lag allowed at the end.")
    output_rate_ratio: Bounds = Field(
        default_factory=lambda: Bounds(min=0.8, max=1.2),
        description="Candidate output rate / stable output rate must stay within these bounds.",
        json_schema_extra={"default": {"min": 0.8, "max": 1.2}},
    )
    no_data: Literal["Fail", "Pass", "Extend"] = Field(
        default="Fail", description="What to decide when neither version saw input during the analysis."
    )


class UpgradeSpec(KappaModel):
    """How a change of spec.version is rolled out."""

    model_config = validated(
        cel(
            "!has(self.stableFor) || !has(self.readinessTimeout)"
            " || duration(self.stableFor) <= duration(self.readinessTimeout)",
            "stableFor must be <= readinessTimeout",
            field_path=".stableFor",
        )
    )

    strategy: Literal["savepoint", "canary", "replay"] = Field(
        default="savepoint",
        description="savepoint: stop with savepoint, start new version from it. canary: analyse beside "
        "stable first. replay: create a ReplayRun for the new version.",
    )
    readiness_timeout: Deadline = Field(
        default="5m",
        description="Time for the new version to pass its readiness gates before rollback; more than 0s.",
    )
    max_restarts: int = Field(default=3, ge=0, le=100, description="Restarts allowed during readiness.")
    stable_for: Duration = Field(
        default="30s",
        description="How long every readiness gate must hold without a break before the new version is "
        "ready; one healthy moment between crashes is not enough. 0s: ready the first time every gate "
        "passes.",
    )
    rollback_window: Duration = Field(
        default="30m",
        description="How long the previous version stays suspended, ready for rollback. 0s: no rollback "
        "window, the previous version is removed once the new one is ready.",
    )
    savepoint_timeout: Deadline = Field(
        default="10m", description="Deadline for taking a savepoint; more than 0s."
    )
    canary: CanarySpec = defaulted(CanarySpec, "Canary analysis settings (strategy canary).")


class CredentialsRef(KappaModel):
    """A Secret key whose value is sent as the REST API's `Authorization` header (e.g. `Bearer …`), for a
    session cluster behind an authenticating proxy. Read by name; never copied into status, events or logs."""

    name: ObjectName = Field(description="Secret in this namespace.")
    key: str = Field(default="authorization", max_length=253, description="Key holding the header value.")


class SessionCluster(KappaModel):
    """A Flink session cluster reached over its REST API."""

    rest_url: str | None = Field(
        default=None,
        alias="restURL",
        max_length=1024,
        pattern=r"^https?://[^\s/]+(/.*)?$",
        description="The JobManager's REST endpoint, e.g. http://flink-jobmanager:8081; default: the "
        "operator's --flink-rest-url.",
    )
    credentials_ref: CredentialsRef | None = Field(
        default=None, description="Authorization header for the REST endpoint, from a Secret."
    )


class RuntimeSpec(KappaModel):
    """Where the job runs. Unset: the operator's default (`kappa run --runtime`). Recorded in status at the
    first deploy, and kept: a job never moves between runtimes behind its savepoints' back."""

    type: Literal["FlinkDeployment", "Session"] = Field(
        description="FlinkDeployment: one FKO FlinkDeployment per version. Session: jobs on a Flink session "
        "cluster over its REST API."
    )
    session: SessionCluster | None = Field(default=None, description="The session cluster (type Session).")


PODS_ONLY = (
    "podTemplate",
    "jobManager.podTemplate",
    "taskManager.podTemplate",
    "env",
    "envFrom",
    "logConfiguration",
    "highAvailability",
)
"""spec.flink fields that only a FlinkDeployment runtime can honour: they shape its pods."""


def _set(field: str) -> str:
    """CEL: spec.flink.<field> is set (and, for a list or map, not empty)."""
    parts = field.split(".")
    present = [f"has(self.flink.{'.'.join(parts[: i + 1])})" for i in range(len(parts))]
    if field in ("env", "envFrom", "logConfiguration"):
        present.append(f"size(self.flink.{field}) > 0")
    return "(" + " && ".join(present) + ")"


NOT_ON_SESSION = cel(
    "!has(self.runtime) || self.runtime.type != 'Session' || !("
    + " || ".join(_set(f) for f in PODS_ONLY)
    + ")",
    "with runtime type Session, flink must not set "
    + ", ".join(PODS_ONLY[:-1])
    + f" or {PODS_ONLY[-1]}: they shape a FlinkDeployment's pods, and a session cluster's pods are its own",
    field_path=".flink",
    reason="FieldValueForbidden",
)


class StreamJobSpec(KappaModel):
    """A versioned Flink streaming job. Changing `version` starts an upgrade."""

    model_config = validated(NOT_ON_SESSION)

    version: VersionName
    source: Source = Field(description="The Kafka input.")
    output: Output = Field(description="The versioned outputs.")
    flink: FlinkSpec = Field(description="The Flink job, passed through to FKO.")
    upgrade: UpgradeSpec = defaulted(UpgradeSpec, "How version changes are rolled out.")
    suspend: bool = Field(default=False, description="Suspend the job with a savepoint.")
    runtime: RuntimeSpec | None = Field(
        default=None, description="Where the job runs; default: the operator's --runtime."
    )


class VersionDeployment(KappaModel):
    version: str = Field(max_length=20)
    deployment: str = Field(max_length=253, description="FlinkDeployment name.")
    role: str = Field(default="active", max_length=16, description="active, target, previous or canary.")
    job_state: str | None = Field(default=None, max_length=32, description="FKO jobStatus.state.")
    lifecycle_state: str | None = Field(default=None, max_length=32, description="FKO lifecycleState.")
    restarts: int = Field(default=0, ge=0, description="Restarts observed since this version started.")
    job_update_time: str | None = Field(default=None, max_length=32, description="FKO jobStatus.updateTime.")
    retire_at: datetime | None = Field(default=None, description="When a previous version is removed.")


class SavepointRecord(KappaModel):
    version: str = Field(max_length=20)
    path: str = Field(max_length=2048)
    taken_at: datetime
    reason: str = Field(max_length=64, description="Upgrade, Suspend, Deletion, Final.")


class VersionHistoryEntry(KappaModel):
    version: str = Field(max_length=20)
    outcome: str = Field(max_length=32, description="Active, Superseded, RolledBack, Failed.")
    at: datetime


class GateResult(KappaModel):
    name: str = Field(max_length=64)
    passed: bool
    message: str = Field(default="", max_length=1024)


class UpgradeStatus(KappaModel):
    step: str = Field(max_length=64)
    from_version: str | None = Field(default=None, max_length=20)
    to_version: str | None = Field(default=None, max_length=20)
    started_at: datetime | None = None
    deadline: datetime | None = None
    savepoint: str | None = Field(
        default=None, max_length=2048, description="Savepoint the target starts from."
    )
    healthy_since: datetime | None = Field(default=None, description="Since when every gate has held.")
    previous_version: str | None = Field(
        default=None, max_length=20, description="Kept suspended at `savepoint` for kappa.dev/rollback."
    )
    failed_version: str | None = Field(
        default=None, max_length=20, description="Not retried until spec changes."
    )
    overdue: bool | None = Field(
        default=None, description="A suspend, resume or adoption passed its deadline; still asked for."
    )
    gates: list[GateResult] = Field(default_factory=list, max_length=32)


class CanaryStatus(KappaModel):
    step: str = Field(max_length=32)
    version: str | None = Field(default=None, max_length=20)
    started_at: datetime | None = None
    deadline: datetime | None = None
    extensions: int = Field(default=0, ge=0)
    result: str | None = Field(default=None, max_length=16)
    baseline: dict[str, int] | None = Field(
        default=None, description="End offsets (input, stable, canary) when the analysis started."
    )
    job_state: str | None = Field(default=None, max_length=32, description="The candidate's jobStatus.state.")
    job_update_time: str | None = Field(default=None, max_length=32, description="Its jobStatus.updateTime.")
    restarts: int = Field(default=0, ge=0, description="Restarts of the candidate seen during the analysis.")
    gates: list[GateResult] = Field(default_factory=list, max_length=32)


class PromotionRecord(KappaModel):
    """A version made live by a ReplayRun's cutover; spec.version still naming the version it replaced means
    "keep the replayed one" until the user moves spec.version on."""

    run: str = Field(max_length=253, description="The ReplayRun that cut over.")
    version: str = Field(max_length=20, description="The replayed version, now live.")
    from_version: str | None = Field(default=None, max_length=20, description="The version it replaced.")
    rolled_back: bool = Field(default=False, description="The run rolled back: from_version is live again.")
    retire_at: datetime | None = Field(default=None, description="End of the run's rollback window.")


class ReplayUpgradeStatus(KappaModel):
    run: str = Field(max_length=253, description="The ReplayRun created for spec.version (strategy replay).")
    version: str = Field(max_length=20)
    phase: str | None = Field(default=None, max_length=32, description="Its phase, as last seen.")


class StreamJobStatus(CommonStatus):
    phase: StreamJobPhase | None = Field(default=None, description="Coarse state, for `kubectl get`.")
    active_version: str | None = Field(default=None, max_length=20, description="Version serving output.")
    stable_version: str | None = Field(default=None, max_length=20, description="Last version that passed.")
    consumer_group: str | None = Field(default=None, max_length=255, description="Active version's group.")
    lag: int | None = Field(default=None, ge=0, description="Total records the active version is behind.")
    deployments: list[VersionDeployment] = Field(default_factory=list, max_length=16)
    savepoints: list[SavepointRecord] = Field(default_factory=list, max_length=32)
    upgrade: UpgradeStatus | None = None
    canary: CanaryStatus | None = None
    history: list[VersionHistoryEntry] = Field(default_factory=list, max_length=64)
    promotion: PromotionRecord | None = None
    replay: ReplayUpgradeStatus | None = None
    runtime: str | None = Field(
        default=None,
        max_length=32,
        description="The runtime the job was deployed on (FlinkDeployment, Session).",
    )
    output_versions: dict[str, str] = Field(
        default_factory=dict,
        description="The version whose output each version writes: a savepoint upgrade keeps writing its "
        "predecessor's output; a first deploy or a replay starts a new one.",
    )
