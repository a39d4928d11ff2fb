"""What one look at a StreamJob sees, as values (nothing written): its spec validated, its Kafka connection,
its SQL's variables, the runtime and the versions' and canary's deployments, its ReplayRuns and the version
they make live, and the upgrade state recorded in status. Or a Halt: what stops the look, and what to say."""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from kappa.adapters.job_runtime.seam import JobRuntime, RuntimeUnavailable
from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.kube import Kube, NotServed
from kappa.api.conditions import ConditionUpdate, stalled
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus, VersionDeployment
from kappa.controllers.cluster import KafkaConnectionError, kafka_connection
from kappa.controllers.job_runtimes import Runtimes, RuntimeUnconfigured
from kappa.controllers.looks import OfObject
from kappa.controllers.status import once
from kappa.controllers.streamjob.deploy import injection
from kappa.controllers.streamjob.replay import runs_of
from kappa.machines import runtime_facts, upgrade
from kappa.machines.decision import Event
from kappa.machines.fko import count_restarts, deployment_view, job_update_time
from kappa.machines.intake import intake_streamjob
from kappa.machines.promotion import Live, RunSeen, live_version
from kappa.render.flink import UnknownVariable, substitute

INTERVAL = float(os.environ.get("KAPPA_RECONCILE_INTERVAL", "10"))
"""Seconds between looks at a StreamJob while something moves that no event shows (machines/cadence.py)."""


def _children_by_version(
    children: list[dict[str, Any]], adopted: set[str | None]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The versions' deployments and the canaries', by version."""
    versions = {
        fd["metadata"]["labels"].get("kappa.dev/version"): fd
        for fd in children
        if fd["metadata"]["labels"].get("kappa.dev/role", "version") == "version"
        # A replay's deployment belongs to its run until the StreamJob adopts it after the cutover.
        or (
            fd["metadata"]["labels"].get("kappa.dev/role") == "replay"
            and fd["metadata"]["labels"].get("kappa.dev/version") in adopted
        )
    }
    canaries = {
        fd["metadata"]["labels"].get("kappa.dev/version"): fd
        for fd in children
        if fd["metadata"]["labels"].get("kappa.dev/role") == "canary"
    }
    return versions, canaries


def _restarts(previous: VersionDeployment | None, fd: dict[str, Any]) -> int:
    """Restarts of a version's job so far: the recorded count, plus one if FKO shows a new one."""
    return count_restarts(
        previous.restarts if previous else 0,
        previous.job_state if previous else None,
        deployment_view(fd).job_state,
        previous.job_update_time if previous else None,
        job_update_time(fd),
    )


@dataclass(frozen=True)
class Halt:
    """A look that cannot go on: what it writes, and when to look again (None: at the next spec change)."""

    patch: dict[str, Any]
    conditions: list[ConditionUpdate]
    events: list[Event]
    following: float | None = INTERVAL


def stall(status: StreamJobStatus, reason: str, message: str, patch: dict[str, Any] | None = None) -> Halt:
    """Said once, in a condition and one event, until it ends."""
    return Halt(patch or {}, stalled(reason, message), once(status, reason, message))


@dataclass(frozen=True)
class Look(OfObject):
    """What one look saw of a StreamJob and its children: values only, nothing written."""

    obj: dict[str, Any]
    job: StreamJobSpec
    now: datetime
    kafka: KafkaConnection | None
    runtime: JobRuntime
    runs: dict[str, tuple[str, ReplayRunSpec, RunSeen]]
    live: Live
    versions: dict[str, dict[str, Any]]
    """The versions' deployments as they are, by version (a replayed one once the job adopts it)."""
    canaries: dict[str, dict[str, Any]]
    views: dict[str, runtime_facts.Deployment]
    ustate: upgrade.UpgradeState

    @property
    def status(self) -> StreamJobStatus:
        """Status as it is now: what this look has written so far included."""
        return StreamJobStatus.of(self.obj)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap if self.kafka else ""


async def observe(
    kube: Kube, runtimes: Runtimes, runs: kopf.Index[Hashable, Any] | None, obj: dict[str, Any], now: datetime
) -> Look | Halt:
    """What one look sees of a StreamJob, its children and its runs; a Halt if it cannot look further."""
    ready = await _prerequisites(kube, runtimes, obj)
    if isinstance(ready, Halt):
        return ready
    job, kafka, runtime, children = ready
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    status = StreamJobStatus.of(obj)
    found = await runs_of(kube, runs, namespace, name)
    live = live_version(job.version, status.promotion, [seen for _, _, seen in found.values()])
    versions, canaries = _children_by_version(children, {live.version, status.active_version})
    previous = {d.version: d for d in status.deployments}
    views = {v: deployment_view(fd, restarts=_restarts(previous.get(v), fd)) for v, fd in versions.items()}
    ustate = upgrade.from_status(status)
    return Look(obj, job, now, kafka, runtime, found, live, versions, canaries, views, ustate)


async def _prerequisites(
    kube: Kube, runtimes: Runtimes, obj: dict[str, Any]
) -> Halt | tuple[StreamJobSpec, KafkaConnection | None, JobRuntime, list[dict[str, Any]]]:
    """A valid spec, its Kafka credentials, its SQL's variables, a runtime that answers; else a Halt."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    generation = int(obj["metadata"]["generation"])
    status = StreamJobStatus.of(obj)
    try:
        job = StreamJobSpec.model_validate(obj["spec"])
    except ValidationError:
        invalid = intake_streamjob(obj["spec"], status, generation)
        return Halt({}, invalid.conditions, invalid.events, None)  # waits for a spec change
    try:
        kafka = await kafka_connection(kube, job, namespace)
    except KafkaConnectionError as exc:
        # A Secret or key missing, or the credentials refused: said once, with the Secret's name.
        return Halt({}, stalled(exc.reason, exc.message), once(status, exc.reason, exc.message))
    try:
        bootstrap = kafka.bootstrap if kafka else ""
        variables = injection(job, namespace, name, job.version, bootstrap).variables()
        for statement in job.flink.sql or []:
            substitute(statement, variables)
    except UnknownVariable as exc:
        message = f"spec.flink.sql: {exc}"
        first = status.observed_generation != generation  # one event per spec change, not per poll
        warning = [Event("Warning", "InvalidSQL", message)] if first else []
        return Halt({}, stalled("InvalidSQL", message), warning, None)  # waits for a spec change
    found = await _runtime(runtimes, job, status, namespace, name)
    return found if isinstance(found, Halt) else (job, kafka, *found)


async def _runtime(
    runtimes: Runtimes, job: StreamJobSpec, status: StreamJobStatus, namespace: str, name: str
) -> Halt | tuple[JobRuntime, list[dict[str, Any]]]:
    try:
        runtime = await runtimes.for_job(job, namespace, status)
    except RuntimeUnconfigured as exc:
        return stall(status, "RuntimeUnconfigured", str(exc))
    try:
        return runtime, await runtime.select(namespace, name)
    except RuntimeUnavailable as exc:
        # An outage reads as one: said once, in a condition and one event, until it ends.
        return stall(status, "FlinkUnavailable", f"{exc}; retrying", {"runtime": runtime.name})
    except NotServed as exc:
        message = f"{exc}: install the Flink Kubernetes Operator"
        return stall(status, "FlinkOperatorMissing", message, {"phase": "Failed"})
