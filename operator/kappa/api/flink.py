"""spec.flink and spec.runtime of a StreamJob: the Flink job passed through to FKO (image, jar or SQL,
configuration, JobManager and TaskManager resources, pod templates, env, logging, high availability), and
where it runs (a FlinkDeployment per version, or a session cluster over its REST API). PODS_ONLY and
NOT_ON_SESSION: the spec.flink fields a session cluster cannot honour, and the CEL rule that refuses them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kappa.api.base import KappaModel, ObjectName, SqlStatement, cel, defaulted, exactly_one, validated
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
