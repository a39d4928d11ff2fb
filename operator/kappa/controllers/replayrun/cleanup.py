"""After a ReplayRun: removing what it created (abort, failure, deletion before its cutover), stopping its job
(a backfill, or a failure kept for inspection), decommissioning the previous version after the rollback
window, and finishing an end state's cleanup that a crash or a busy consumer group interrupted, under
spec.timeouts.cleanup (machines/replay_cleanup.py decides which work and how it ends)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kappa.adapters.alias import AliasError
from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.values import KafkaAdapterError
from kappa.adapters.kube import ApiException
from kappa.api.base import API_VERSION, duration
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.replayrun import ReplayOutput, ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus
from kappa.controllers.cluster import ViewUnavailable, open_view
from kappa.controllers.replayrun.context import Services, replaced_version
from kappa.controllers.replayrun.cutover import switch_back
from kappa.controllers.replayrun.deploy import KAFKA_TOPIC_APIS
from kappa.controllers.replayrun.quota import lift_recorded_quota
from kappa.controllers.status import once
from kappa.machines import replay, replay_cleanup
from kappa.render import names
from kappa.render.flink import kafka_topic_name
from kappa.render.replay import output_table, output_topic


def _is_replay(fd: dict[str, Any] | None) -> bool:
    return fd is not None and (fd["metadata"].get("labels") or {}).get("kappa.dev/role") == "replay"


async def remove_replay(
    services: Services,
    obj: dict[str, Any],
    run: ReplayRunSpec,
    job: StreamJobSpec | None,
    admin: KafkaAdmin | None,
) -> bool:
    """Remove the replay's deployment, group, quota and output: only ever before a cutover, and never
    an output the view reads. True once everything is gone."""
    namespace, job_name = obj["metadata"]["namespace"], run.job_ref.name
    fd_name = names.deployment_name(job_name, run.version)
    runtime = await services.runtime(namespace, job_name)
    if _is_replay(await runtime.get(namespace, fd_name)):
        await runtime.delete(namespace, fd_name)
        return False  # the group has members until the job is gone
    if job is None or admin is None:
        return True
    group = names.consumer_group(namespace, job_name, run.version)
    services.lag.untrack(group)
    info = (await admin.describe_groups([group]))[group]
    if info.members:
        return False
    await admin.delete_group(group)
    status = ReplayRunStatus.of(obj)
    await lift_recorded_quota(admin.connection, status.throttle)
    await _remove_output(services, namespace, run, job, admin, status.view)
    return True


async def _remove_output(
    services: Services,
    namespace: str,
    run: ReplayRunSpec,
    job: StreamJobSpec,
    admin: KafkaAdmin,
    view_name: str | None,
) -> None:
    topic = output_topic(job, run)
    if topic:
        api = await services.kube.preferred("KafkaTopic", KAFKA_TOPIC_APIS)
        if job.source.kafka.cluster_ref and api:
            resource = kafka_topic_name(topic)
            await services.kube.delete(api, "KafkaTopic", job.source.kafka.namespace or namespace, resource)
        else:
            await admin.delete_topic(topic)
    table = output_table(job, run)
    if not (table and view_name):
        return
    view_obj = await services.kube.get(API_VERSION, "MaterializedView", namespace, view_name)
    if view_obj is not None:
        view_spec = MaterializedViewSpec.model_validate(view_obj["spec"])
        if view_spec.backend.type == "postgres":
            view = await open_view(services.kube, namespace, view_spec, admin)
            await view.remove(table)


async def stop_replay(
    services: Services, obj: dict[str, Any], run: ReplayRunSpec, admin: KafkaAdmin | None
) -> bool:
    """The replay job and its quota go; its group and output stay."""
    namespace, job_name = obj["metadata"]["namespace"], run.job_ref.name
    fd_name = names.deployment_name(job_name, run.version)
    runtime = await services.runtime(namespace, job_name)
    if _is_replay(await runtime.get(namespace, fd_name)):
        await runtime.delete(namespace, fd_name)
    services.lag.untrack(names.consumer_group(namespace, job_name, run.version))
    if admin is not None:
        await lift_recorded_quota(admin.connection, ReplayRunStatus.of(obj).throttle)
    return True


async def decommission(
    services: Services, obj: dict[str, Any], run: ReplayRunSpec, admin: KafkaAdmin | None
) -> bool:
    """After the window: the previous version's deployment and group go; its output stays, under its
    own retention (the StreamJob's deletionPolicy)."""
    previous = replaced_version(ReplayRunStatus.of(obj))
    if not previous:
        return True
    namespace, job_name = obj["metadata"]["namespace"], run.job_ref.name
    job_obj = await services.kube.get(API_VERSION, "StreamJob", namespace, job_name)
    if job_obj and StreamJobStatus.of(job_obj).active_version == previous:
        return True  # it is live again (rolled back by other means): nothing to decommission
    fd_name = names.deployment_name(job_name, previous)
    if await (await services.runtime(namespace, job_name)).delete(namespace, fd_name):
        return False
    if admin is None:
        return True
    group = names.consumer_group(namespace, job_name, previous)
    services.lag.untrack(group)
    info = (await admin.describe_groups([group]))[group]
    if info.members:
        return False
    await admin.delete_group(group)
    return True


def _job_spec(job_obj: dict[str, Any] | None) -> StreamJobSpec | None:
    if job_obj is None:
        return None
    with contextlib.suppress(ValidationError):
        return StreamJobSpec.model_validate(job_obj["spec"])
    return None


def _left(status: ReplayRunStatus) -> tuple[tuple[str, str | None], ...]:
    """What a cleanup that timed out may have left, named for a human to remove."""
    output = status.output or ReplayOutput()
    return (
        ("deployment", status.deployment),
        ("consumer group", status.consumer_group),
        ("topic", output.topic),
        ("table", output.table),
    )


async def finish(
    services: Services,
    obj: dict[str, Any],
    run: ReplayRunSpec,
    job_obj: dict[str, Any] | None,
    state: replay.ReplayState,
    now: datetime,
) -> None:
    """End states: finish a cleanup or decommission that a crash or a busy group interrupted."""
    status = ReplayRunStatus.of(obj)
    if status.cleanup != "Pending":
        return
    job = _job_spec(job_obj)
    namespace = obj["metadata"]["namespace"]
    admin = await services.admin_or_none(job, namespace) if job is not None else None
    work = replay_cleanup.end_work(state, job_known=job_obj is not None and job is not None)
    patch: dict[str, Any] = {}
    done, error = True, None
    try:
        if work == "StopReplay":
            done = await stop_replay(services, obj, run, admin)
        elif work == "Decommission":
            done = await decommission(services, obj, run, admin)
        elif work == "Remove":
            done = await remove_replay(services, obj, run, job, admin)
        elif work == "SwitchBack" and job_obj is not None and job is not None:
            patch = await switch_back(services, obj, run, job_obj, job, state, now)
    except (AliasError, KafkaAdapterError, ViewUnavailable, ApiException) as exc:
        done, error = False, str(exc)
    timeout = duration(run.timeouts.cleanup)
    out = replay_cleanup.after_cleanup(state, done, error, timeout, now, _left(status))
    if out.cleanup is not None:
        patch["cleanup"] = out.cleanup
    if out.writes or patch:
        events = out.events if out.retrying is None else once(status, "CleanupFailed", out.retrying)
        await services.write(obj, patch, out.conditions, events, now)


async def finalize(services: Services, namespace: str, name: str) -> bool:
    """Deleting a run before its cutover removes what it created; after it, the replayed version is the
    live one and stays."""
    obj = await services.kube.get(API_VERSION, "ReplayRun", namespace, name)
    if obj is None:
        return True
    status = ReplayRunStatus.of(obj)
    phase = status.phase or "Pending"
    created = any(t.phase == "Replaying" for t in status.transitions)
    if not created or phase in ("CuttingOver", "Observing", "Succeeded", "RolledBack"):
        return True  # nothing created (never remove what a failed preflight found), or it is live now
    kept = phase == "Failed" and status.reason in replay.KEPT_FOR_INSPECTION
    if phase in ("Aborted", "Failed") and status.cleanup == "Done" and not kept:
        return True
    try:
        run = ReplayRunSpec.model_validate(obj["spec"])
    except ValidationError:
        return True
    job = _job_spec(await services.kube.get(API_VERSION, "StreamJob", namespace, run.job_ref.name))
    admin = await services.admin_or_none(job, namespace) if job is not None else None
    return await remove_replay(services, obj, run, job, admin)
