"""A ReplayRun's replay job: the StreamJob's job at the new version, with the run's overrides, reading from
its seeded group into its own versioned output. Pure. The StreamJob renders the same object when it adopts
the replayed version after cutover, so adoption changes nothing FKO would restart for."""

from __future__ import annotations

from typing import Any

from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.render import names
from kappa.render.flink import Injection, flink_deployment

ROLE_LABEL = "kappa.dev/role"
RUN_LABEL = "kappa.dev/replayrun"


def replayed_job(job: StreamJobSpec, run: ReplayRunSpec) -> StreamJobSpec:
    """The StreamJob spec with the run's overrides applied, at the run's version."""
    overrides = run.overrides
    flink = job.flink
    if overrides is not None:
        changes: dict[str, Any] = {}
        if overrides.image is not None:
            changes["image"] = overrides.image
        if overrides.args is not None:
            changes["args"] = list(overrides.args)
        if overrides.sql is not None:
            changes["sql"] = list(overrides.sql)
        if overrides.parallelism is not None:
            changes["parallelism"] = overrides.parallelism
        if overrides.flink_configuration is not None:
            changes["flink_configuration"] = {**flink.flink_configuration, **overrides.flink_configuration}
        flink = flink.model_copy(update=changes)
    return job.model_copy(update={"flink": flink, "version": run.version})


def output_topic(job: StreamJobSpec, run: ReplayRunSpec) -> str | None:
    if run.output and run.output.topic:
        return run.output.topic
    return names.output_topic(job.output.topic.base, run.version) if job.output.topic else None


def output_table(job: StreamJobSpec, run: ReplayRunSpec) -> str | None:
    if run.output and run.output.table:
        return run.output.table
    return names.output_table(job.output.table.base, run.version) if job.output.table else None


def replay_retention(run: ReplayRunSpec) -> str:
    """retention.ms of a replay's output topic: forever unless the run says otherwise, since replayed records
    keep their original timestamps and time retention would delete them on arrival."""
    return str(run.output.retention_ms if run.output and run.output.retention_ms is not None else -1)


def replay_injection(
    namespace: str, job_name: str, job: StreamJobSpec, run: ReplayRunSpec, *, bootstrap_servers: str
) -> Injection:
    """A new group, seeded by the operator before the deploy (so: group-offsets), a new prefix and output."""
    throttle = run.throttle
    until = run.until
    offsets = (
        ";".join(f"partition:{o.partition},offset:{o.offset}" for o in until.offsets)
        if until.offsets
        else None
    )
    return Injection(
        version=run.version,
        group_id=names.consumer_group(namespace, job_name, run.version),
        transactional_id_prefix=names.transactional_id_prefix(namespace, job_name, run.version),
        bootstrap_servers=bootstrap_servers,
        startup_mode="group-offsets",
        output_topic=output_topic(job, run),
        output_table=output_table(job, run),
        max_records_per_second=throttle.records_per_second if throttle else None,
        bounded_mode="timestamp" if until.timestamp else "specific-offsets" if until.offsets else "unbounded",
        bounded_timestamp_ms=int(until.timestamp.timestamp() * 1000) if until.timestamp else None,
        bounded_offsets=offsets,
    )


def replay_deployment(
    *,
    namespace: str,
    job_name: str,
    job_uid: str,
    job: StreamJobSpec,
    run_name: str,
    run: ReplayRunSpec,
    bootstrap_servers: str,
    state: str = "running",
) -> dict[str, Any]:
    """Owned by the StreamJob, not the run: once cut over it is the live version, and deleting a finished
    ReplayRun must not take the live job with it."""
    fd = flink_deployment(
        namespace=namespace,
        job=job_name,
        owner_uid=job_uid,
        spec=replayed_job(job, run),
        injection=replay_injection(namespace, job_name, job, run, bootstrap_servers=bootstrap_servers),
        state="suspended" if state == "suspended" else "running",
    )
    fd["metadata"]["labels"][ROLE_LABEL] = "replay"
    fd["metadata"]["labels"][RUN_LABEL] = run_name
    return fd
