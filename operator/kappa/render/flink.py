"""StreamJob + version → that version's FlinkDeployment (flink.apache.org/v1beta1) and KafkaTopic, with what
the operator injects: the consumer group, starting offsets, output names and transactionalIdPrefix, as config,
args and SQL variables."""

from __future__ import annotations

import copy
import re
import zlib
from dataclasses import dataclass
from typing import Any, Literal

from kappa.api.base import duration
from kappa.api.streamjob import StreamJobSpec
from kappa.machines.fko import PERIODIC_CHECKPOINT_INTERVAL, asks_for_checkpoints, fko_configuration
from kappa.render import names, passthrough

MANAGED_BY = "kappa-operator"
SQL_RUNNER_JAR = "local:///opt/flink/usrlib/kappa-sql-runner.jar"
SQL_RUNNER_CLASS = "dev.kappa.sqlrunner.SqlRunner"
StartupMode = Literal["earliest-offset", "latest-offset", "timestamp", "group-offsets"]
_VARIABLE = re.compile(r"\$\{(KAPPA_[A-Z_]+)\}")


class UnknownVariable(ValueError):
    """A statement names a ${KAPPA_*} variable the operator does not inject."""


@dataclass(frozen=True)
class Injection:
    """What every version gets from the operator, so users never hand-edit it."""

    version: str
    group_id: str
    transactional_id_prefix: str
    bootstrap_servers: str
    startup_mode: StartupMode
    startup_timestamp_ms: int | None = None
    output_topic: str | None = None
    output_table: str | None = None
    bounded_mode: Literal["unbounded", "timestamp", "specific-offsets"] = "unbounded"
    """A bounded replay (a backfill) stops at its end: Flink's Kafka source `scan.bounded.mode`."""
    bounded_timestamp_ms: int | None = None
    bounded_offsets: str | None = None
    """`partition:0,offset:42;partition:1,offset:7`, as `scan.bounded.specific-offsets` takes them."""
    max_records_per_second: int | None = None
    """A replay's throttle, for jobs that also limit themselves; the broker quota on the client id (= the
    group id) is what enforces it."""

    def variables(self) -> dict[str, str]:
        values = {
            "KAPPA_VERSION": self.version,
            "KAPPA_GROUP_ID": self.group_id,
            "KAPPA_CLIENT_ID": self.group_id,
            "KAPPA_TRANSACTIONAL_ID_PREFIX": self.transactional_id_prefix,
            "KAPPA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAPPA_STARTUP_MODE": self.startup_mode,
            "KAPPA_STARTUP_TIMESTAMP": str(self.startup_timestamp_ms or ""),
            "KAPPA_OUTPUT_TOPIC": self.output_topic or "",
            "KAPPA_OUTPUT_TABLE": self.output_table or "",
            "KAPPA_MAX_RECORDS_PER_SECOND": str(self.max_records_per_second or ""),
            "KAPPA_BOUNDED_MODE": self.bounded_mode,
            "KAPPA_BOUNDED_TIMESTAMP": str(self.bounded_timestamp_ms or ""),
            "KAPPA_BOUNDED_OFFSETS": self.bounded_offsets or "",
        }
        return values

    def configuration(self) -> dict[str, str]:
        """The same values as Flink configuration, for jar jobs that read `kappa.*` keys."""
        return {
            f"kappa.{key.removeprefix('KAPPA_').lower().replace('_', '-')}": value
            for key, value in self.variables().items()
            if value
        }

    def args(self) -> list[str]:
        return [f"--kappa.{k.removeprefix('kappa.')}={v}" for k, v in self.configuration().items()]


def injection_for(
    namespace: str,
    job: str,
    spec: StreamJobSpec,
    version: str,
    *,
    bootstrap_servers: str,
    startup_mode: StartupMode,
    startup_timestamp_ms: int | None = None,
    output_version: str | None = None,
) -> Injection:
    """`output_version`: the version whose output this one writes (a savepoint upgrade keeps its
    predecessor's); by default its own."""
    out = output_version or version
    return Injection(
        version=version,
        group_id=names.consumer_group(namespace, job, version),
        transactional_id_prefix=names.transactional_id_prefix(namespace, job, version),
        bootstrap_servers=bootstrap_servers,
        startup_mode=startup_mode,
        startup_timestamp_ms=startup_timestamp_ms,
        output_topic=names.output_topic(spec.output.topic.base, out) if spec.output.topic else None,
        output_table=names.output_table(spec.output.table.base, out) if spec.output.table else None,
    )


def substitute(statement: str, variables: dict[str, str]) -> str:
    """Replace ${KAPPA_*} in a SQL statement; an unknown name is an error, not an empty string."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise UnknownVariable(
                f"${{{name}}} is not a variable the operator injects ({', '.join(variables)})"
            )
        return variables[name]

    return _VARIABLE.sub(value, statement)


def labels(job: str, version: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/name": job,
        "kappa.dev/job": job,
        "kappa.dev/version": version,
    }


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def flink_deployment(
    *,
    namespace: str,
    job: str,
    owner_uid: str,
    spec: StreamJobSpec,
    injection: Injection,
    state: Literal["running", "suspended"] = "running",
    initial_savepoint_path: str | None = None,
    savepoint_redeploy_nonce: int | None = None,
) -> dict[str, Any]:
    """The FlinkDeployment of one version, always with upgradeMode savepoint."""
    flink = spec.flink
    # What a real FKO needs to report checkpoints for the Checkpointed gate (cited in machines/fko.py).
    fko = fko_configuration(flink.flink_configuration, duration(spec.upgrade.readiness_timeout))
    configuration = {
        **flink.flink_configuration,
        **passthrough.high_availability_configuration(flink),
        **passthrough.merge_configuration(flink),
        **fko,
        **injection.configuration(),
    }
    job_spec: dict[str, Any] = {
        "parallelism": flink.parallelism,
        "upgradeMode": "savepoint",
        "state": state,
    }
    if flink.allow_non_restored_state:  # unset when false, as before the field existed: FKO's default
        job_spec["allowNonRestoredState"] = True
    if flink.sql is not None:
        variables = injection.variables()
        job_spec |= {
            "jarURI": SQL_RUNNER_JAR,
            "entryClass": SQL_RUNNER_CLASS,
            "args": [substitute(statement, variables) for statement in flink.sql],
        }
    else:
        job_spec |= {"jarURI": flink.jar_uri, "args": [*flink.args, *injection.args()]}
        if flink.entry_class:
            job_spec["entryClass"] = flink.entry_class
    if initial_savepoint_path:
        job_spec["initialSavepointPath"] = initial_savepoint_path
        job_spec["savepointRedeployNonce"] = redeploy_nonce(initial_savepoint_path)
    if savepoint_redeploy_nonce is not None:
        job_spec["savepointRedeployNonce"] = savepoint_redeploy_nonce
    job_manager: dict[str, Any] = {
        "resource": {"cpu": flink.job_manager.cpu, "memory": flink.job_manager.memory}
    }
    if flink.job_manager.pod_template:
        job_manager["podTemplate"] = flink.job_manager.pod_template.wire()
    task_manager: dict[str, Any] = {
        "resource": {"cpu": flink.task_manager.cpu, "memory": flink.task_manager.memory},
        "replicas": flink.task_manager.replicas,
    }
    if flink.task_manager.pod_template:
        task_manager["podTemplate"] = flink.task_manager.pod_template.wire()
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {
            "name": names.deployment_name(job, injection.version),
            "namespace": namespace,
            "labels": labels(job, injection.version),
            "ownerReferences": [owner_reference("StreamJob", job, owner_uid)],
        },
        "spec": {
            "image": flink.image,
            "flinkVersion": flink.flink_version,
            "serviceAccount": flink.service_account,
            "flinkConfiguration": configuration,
            "jobManager": job_manager,
            "taskManager": task_manager,
            "job": job_spec,
            **passthrough.spec_fields(flink),
        },
    }


def redeploy_nonce(initial_savepoint_path: str) -> int:
    """FKO restores an existing deployment from initialSavepointPath only with a new savepointRedeployNonce.
    Derived from the path, so it is stable across operator restarts and one restore is never asked twice; set
    whenever a path is, so a new deployment's first apply and the ones after it are the same spec."""
    return zlib.crc32(initial_savepoint_path.encode()) % 2**31


def with_state(
    deployed: dict[str, Any],
    *,
    state: Literal["running", "suspended"],
    initial_savepoint_path: str | None = None,
    checkpoint_interval: str | None = None,
) -> dict[str, Any]:
    """An existing version's FlinkDeployment in another state, its job as it was deployed: suspending a
    version, resuming it or rolling back to it must never give it the current spec's (another version's)
    logic. Running, it asks for periodic checkpoints again at `checkpoint_interval` if it stopped asking at
    rest (`quieted`): its gates are judged again."""
    meta = deployed["metadata"]
    spec = copy.deepcopy(deployed["spec"])
    job = spec.setdefault("job", {})
    job["state"] = state
    if initial_savepoint_path:
        job["initialSavepointPath"] = initial_savepoint_path
        job["savepointRedeployNonce"] = redeploy_nonce(initial_savepoint_path)
    if state == "running" and checkpoint_interval and not asks_for_checkpoints(deployed):
        spec.setdefault("flinkConfiguration", {})[PERIODIC_CHECKPOINT_INTERVAL] = checkpoint_interval
    return {
        "apiVersion": deployed.get("apiVersion", "flink.apache.org/v1beta1"),
        "kind": "FlinkDeployment",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": list(meta.get("ownerReferences") or []),
        },
        "spec": spec,
    }


def already_applied(deployed: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    """The deployment as the watch last showed it says all that `desired` does: the same spec, its labels
    and its owners. Applying it again would change nothing, so a look that repeats an action while it waits
    (a savepoint, a start) sends nothing. Stale at worst: a change made since arrives as a watch event, and
    the look it wakes applies again."""
    if deployed is None:
        return False
    meta, wanted = deployed.get("metadata") or {}, desired["metadata"]
    labels = meta.get("labels") or {}
    return (
        deployed.get("spec") == desired["spec"]
        and all(labels.get(k) == v for k, v in (wanted.get("labels") or {}).items())
        and (meta.get("ownerReferences") or []) == (wanted.get("ownerReferences") or [])
    )


def quieted(deployed: dict[str, Any]) -> dict[str, Any]:
    """A running version's FlinkDeployment as deployed, with the periodic checkpoint interval that only its
    gates needed set blank: FKO takes it without redeploying the job (machines/fko.py). Blank, not removed:
    FKO's observe config keeps a key of the deployed spec that the current spec leaves out."""
    suspended = ((deployed.get("spec") or {}).get("job") or {}).get("state") == "suspended"
    fd = with_state(deployed, state="suspended" if suspended else "running")
    fd["spec"].setdefault("flinkConfiguration", {})[PERIODIC_CHECKPOINT_INTERVAL] = ""
    return fd


def kafka_topic_name(topic: str) -> str:
    """KafkaTopic names are DNS names; the Kafka topic name keeps its dots in spec.topicName."""
    return topic.replace(".", "-").replace("_", "-").lower()


def kafka_topic(
    *,
    namespace: str,
    job: str,
    owner_uid: str,
    topic: str,
    version: str,
    partitions: int,
    replicas: int,
    config: dict[str, str],
    cluster: str,
    api_version: str = "kafka.strimzi.io/v1",
    owned: bool = False,
) -> dict[str, Any]:
    """One version's Strimzi KafkaTopic; `api_version` comes from discovery (v1, else v1beta2)."""
    metadata: dict[str, Any] = {
        "name": kafka_topic_name(topic),
        "namespace": namespace,
        "labels": {**labels(job, version), "strimzi.io/cluster": cluster},
    }
    if owned:  # only with deletionPolicy Delete: otherwise the output outlives the job
        metadata["ownerReferences"] = [owner_reference("StreamJob", job, owner_uid)]
    return {
        "apiVersion": api_version,
        "kind": "KafkaTopic",
        "metadata": metadata,
        "spec": {"topicName": topic, "partitions": partitions, "replicas": replicas, "config": dict(config)},
    }
