"""What a StreamJob passes through to its FlinkDeployments, named as FKO's FlinkDeploymentSpec names it: pod
templates, environment of the main container, log configuration and Kubernetes high availability.
docs/flink-passthrough.md says how each one maps and merges."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kappa.api.base import KappaModel, ObjectName, cel, exactly_one, validated

MAIN_CONTAINER = "flink-main-container"
"""The container Flink runs in, in a pod template (Flink's `Constants.MAIN_CONTAINER_NAME`)."""
LOG_CONFIG_FILES = ("log4j-console.properties", "logback-console.xml")
"""The only `logConfiguration` keys FKO takes (DefaultValidator.ALLOWED_LOG_CONF_KEYS, Flink's
`Constants.CONFIG_FILE_LOG4J_NAME` and `CONFIG_FILE_LOGBACK_NAME`)."""
FKO_FORBIDDEN_CONFIGURATION = (
    "kubernetes.namespace",
    "kubernetes.cluster-id",
    "high-availability.cluster-id",
)
"""flinkConfiguration keys FKO refuses (DefaultValidator.FORBIDDEN_CONF_KEYS): FKO sets them itself."""
HA_CONFIGURATION = ("high-availability", "high-availability.type", "high-availability.storageDir")
"""The flinkConfiguration keys that `highAvailability` sets (`high-availability` is the key before Flink 1.17,
still read as a fallback of `high-availability.type`)."""
_KEY_RE = r"^[-._a-zA-Z0-9]+$"


class PodTemplate(KappaModel):
    """A core/v1 PodTemplateSpec, passed through to FKO unchanged apart from the environment (see `env`).
    Only its top level is checked here; FKO's CRD checks the rest when the FlinkDeployment is applied, and
    a refusal makes the StreamJob Stalled (ChildRejected) with the API server's message."""

    api_version: str | None = Field(default=None, max_length=64, description="Optional, e.g. v1.")
    kind: str | None = Field(default=None, max_length=64, description="Optional, e.g. Pod.")
    metadata: dict[str, Any] | None = Field(
        default=None,
        description="Pod metadata: labels and annotations are added to the pods.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    spec: dict[str, Any] | None = Field(
        default=None,
        description="A core/v1 PodSpec (kubectl explain pod.spec). The Flink container is named "
        f"{MAIN_CONTAINER}; Flink sets its image, command, ports and resources, the rest is merged.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class KeySelector(KappaModel):
    """A key of a Secret or ConfigMap in the job's namespace."""

    name: ObjectName = Field(description="Name of the Secret or ConfigMap.")
    key: str = Field(min_length=1, max_length=253, pattern=_KEY_RE, description="The key to take.")
    optional: bool | None = Field(
        default=None, description="Start the pod even if the object or key is missing (variable unset)."
    )


class ObjectFieldSelector(KappaModel):
    """A field of the pod, e.g. metadata.name or status.podIP."""

    api_version: str | None = Field(default=None, max_length=64, description="Default v1.")
    field_path: str = Field(min_length=1, max_length=256, description="e.g. status.podIP.")


class ResourceFieldSelector(KappaModel):
    """A resource limit or request of a container, e.g. limits.memory."""

    container_name: str | None = Field(default=None, max_length=63, description="Default: this container.")
    resource: str = Field(min_length=1, max_length=64, description="e.g. limits.memory.")
    divisor: int | str | None = Field(default=None, description="Unit of the value, e.g. 1Mi.")


class EnvVarSource(KappaModel):
    """Where a variable's value comes from: exactly one source. The kubelet reads it when the pod starts; the
    operator never reads the Secret."""

    model_config = validated(
        cel(
            exactly_one(["secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef"]),
            "exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef must be set",
        )
    )

    secret_key_ref: KeySelector | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: KeySelector | None = Field(default=None, description="A key of a ConfigMap.")
    field_ref: ObjectFieldSelector | None = Field(default=None, description="A field of the pod.")
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource of the container."
    )


class EnvVar(KappaModel):
    """A core/v1 EnvVar of Flink's main container: a value, or a value from a Secret, ConfigMap or field."""

    model_config = validated(
        cel(
            "!has(self.value) || !has(self.valueFrom)",
            "value and valueFrom are exclusive",
            field_path=".valueFrom",
        )
    )

    name: str = Field(min_length=1, max_length=256, pattern=r"^[^=]+$", description="Variable name; no '='.")
    value: str | None = Field(default=None, max_length=32768, description="A literal value.")
    value_from: EnvVarSource | None = Field(default=None, description="A value from elsewhere.")


class LocalObjectRef(KappaModel):
    name: ObjectName = Field(description="Name of the Secret or ConfigMap in the job's namespace.")
    optional: bool | None = Field(default=None, description="Start the pod even if it is missing.")


class EnvFromSource(KappaModel):
    """A core/v1 EnvFromSource: every key of a Secret or ConfigMap as a variable."""

    model_config = validated(
        cel(
            exactly_one(["configMapRef", "secretRef"]), "exactly one of configMapRef or secretRef must be set"
        )
    )

    prefix: str | None = Field(default=None, max_length=256, description="Prepended to each key.")
    config_map_ref: LocalObjectRef | None = Field(default=None, description="A ConfigMap.")
    secret_ref: LocalObjectRef | None = Field(default=None, description="A Secret.")


class HighAvailability(KappaModel):
    """Flink's Kubernetes high-availability services: the JobManager keeps its leader and the pointer to the
    latest checkpoint in ConfigMaps, and the metadata itself under storageDir, so that a JobManager that
    dies comes back from its latest checkpoint rather than restarting the job from its initial state. The
    Flink ServiceAccount needs to create, edit and delete ConfigMaps (FKO's Helm chart grants its `flink`
    account that)."""

    storage_dir: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^\S+$",
        description="Flink's high-availability.storageDir: a durable path every JobManager can reach, e.g. "
        "s3://bucket/flink/ha (with the S3 plugin in the image) or file:///flink-data/ha on a volume mounted "
        "through podTemplate. Each FlinkDeployment writes under its own cluster id.",
    )
