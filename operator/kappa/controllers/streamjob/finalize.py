"""Deleting a StreamJob: a final savepoint of the active version (asked for by suspending its deployment),
recorded in status, in an event and as a FlinkStateSnapshot that outlives the job; then the runtime releases
what the garbage collector would not (a session cluster's jobs). Deletion never hangs on a job that cannot
take one: never ran, failed, unrenderable, or past spec.upgrade.savepointTimeout."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from pydantic import ValidationError

from kappa.adapters.job_runtime.seam import FD_API, JobRuntime, RuntimeUnavailable
from kappa.adapters.kube import ApiException, Kube, NamespaceTerminating, NotServed
from kappa.api.base import API_VERSION, duration
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import SavepointRecord, StreamJobStatus
from kappa.controllers.failpoints import crash_at, intent
from kappa.controllers.job_runtimes import Runtimes, RuntimeUnconfigured
from kappa.controllers.lag import LagTracking
from kappa.controllers.status import dt
from kappa.controllers.streamjob.deploy import Deploy, carry_out
from kappa.machines import runtime_facts, upgrade
from kappa.machines.fko import deployment_view
from kappa.render import names
from kappa.render.flink import UnknownVariable

FINALIZE_LOOKS = 30
"""Looks (2 s apart) one deletion handler makes before handing back to Kopf."""
NOT_STARTED = frozenset({None, "RECONCILING", "CREATED", "INITIALIZING"})
"""Job states seen before a job has processed anything (FKO sets RECONCILING at submit)."""


def _normal(obj: dict[str, Any], reason: str, message: str) -> None:
    kopf.event(kopf.Body(cast(kopf.RawBody, obj)), type="Normal", reason=reason, message=message)


def _warning(obj: dict[str, Any], reason: str, message: str) -> None:
    kopf.event(kopf.Body(cast(kopf.RawBody, obj)), type="Warning", reason=reason, message=message)


async def finalize(kube: Kube, runtimes: Runtimes, lag: LagTracking, namespace: str, name: str) -> bool:
    """One step of deletion; True when the object may go."""
    obj = await kube.get(API_VERSION, "StreamJob", namespace, name)
    if obj is None:
        return True
    status = StreamJobStatus.of(obj)
    try:
        job = StreamJobSpec.model_validate(obj["spec"])
        runtime = await runtimes.for_job(job, namespace, status)
    except (ValidationError, RuntimeUnconfigured) as exc:
        message = f"no final savepoint could be asked for: the spec is invalid ({str(exc)[:200]})"
        _warning(obj, "FinalSavepointSkipped", message)
        return True
    asked = dt(obj["metadata"]["deletionTimestamp"]) or datetime.now(UTC)
    saved = False
    try:
        if not await _final_savepoint(kube, lag, runtime, obj, job, asked):
            return False
        saved = True
        await runtime.release(namespace, name)
        return True
    except RuntimeUnavailable as exc:
        # An outage: wait for it up to savepointTimeout, unless no version ever ran (nothing to keep).
        never = _never_ran(status)
        if not never and datetime.now(UTC) - asked <= duration(job.upgrade.savepoint_timeout):
            return False
        left = await runtime.release(namespace, name, abandon=True)
        if not saved:
            reason = "FinalSavepointSkipped" if never else "FinalSavepointFailed"
            what = f"{status.active_version} never ran" if never else "giving up"
            _warning(obj, reason, f"{exc}; {what}")
        if left:
            _warning(
                obj,
                "JobsLeftRunning",
                f"{exc}: cancel there what may still run: job {', '.join(left)}",
            )
        return True


async def _final_savepoint(
    kube: Kube,
    lag: LagTracking,
    runtime: JobRuntime,
    obj: dict[str, Any],
    job: StreamJobSpec,
    asked: datetime,
) -> bool:
    """True once the active version's state is kept, or there is none to keep, or none can be taken."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    status = StreamJobStatus.of(obj)
    active = status.active_version
    if not active:
        starting = status.upgrade.to_version if status.upgrade else None
        if starting:
            message = f"{starting} was not active yet: only an active version's state is kept"
            _normal(obj, "FinalSavepointSkipped", message)
        return True
    fd = await runtime.get(namespace, names.deployment_name(name, active))
    if fd is None:
        return True
    view = deployment_view(fd)
    if view.job_state in NOT_STARTED and _never_ran(status):
        # FKO takes no savepoint of a job that is not running (it would wait for one, as we would).
        _normal(obj, "FinalSavepointSkipped", f"{active} never ran: no state to keep")
        return True
    if view.desired_state != "suspended":
        return await _ask_for_savepoint(runtime, obj, job, active, fd)
    if await _savepoint_taken(kube, obj, job, active, view, asked):
        lag.untrack(names.consumer_group(namespace, name, active))
        return True
    return _no_savepoint_to_wait_for(obj, job, active, view, asked)


async def _ask_for_savepoint(
    runtime: JobRuntime, obj: dict[str, Any], job: StreamJobSpec, active: str, fd: dict[str, Any]
) -> bool:
    """Suspending the deployment makes FKO take a savepoint; True if it cannot even be asked."""
    intent("streamjob", obj["metadata"]["namespace"], obj["metadata"]["name"], ["Finalizing"])  # the deletion
    deploy = Deploy(runtime, job, obj, job.source.kafka.bootstrap_servers or "", deployed={active: fd})
    try:
        await carry_out(deploy, [upgrade.Apply(active, "suspended")])
    except (UnknownVariable, ApiException) as exc:
        # Deletion must not hang on a deployment that cannot be rendered or is refused.
        _warning(obj, "FinalSavepointSkipped", f"could not ask {active} for a final savepoint: {exc}")
        return True
    return False


async def _savepoint_taken(
    kube: Kube,
    obj: dict[str, Any],
    job: StreamJobSpec,
    active: str,
    view: runtime_facts.Deployment,
    asked: datetime,
) -> bool:
    """The suspension's savepoint, recorded once it is there."""
    fresh = view.savepoint_at is None or view.savepoint_at >= asked - timedelta(seconds=1)
    # Suspended before the deletion (spec.suspend): its suspension's savepoint is its last state, and
    # FKO takes no other of a job that is not running.
    stopped = view.job_state in ("FINISHED", "SUSPENDED") or view.lifecycle == "SUSPENDED"
    if view.upgrade_savepoint_path and (fresh or stopped):
        await _record_final_savepoint(kube, obj, active, view.upgrade_savepoint_path)
        return True
    return False


def _no_savepoint_to_wait_for(
    obj: dict[str, Any], job: StreamJobSpec, active: str, view: runtime_facts.Deployment, asked: datetime
) -> bool:
    """True when nothing runs that could take a savepoint, or it took too long: said in a Warning."""
    stopped = view.job_state in ("FINISHED", "SUSPENDED") or view.lifecycle == "SUSPENDED"
    if view.job_state in ("FAILED", "CANCELED") or stopped:
        # Nothing runs that could take a savepoint: waiting for one would only hold the deletion.
        message = f"{active}'s job is {view.job_state}: no final savepoint can be taken"
        _warning(obj, "FinalSavepointSkipped", message)
        return True
    if datetime.now(UTC) - asked > duration(job.upgrade.savepoint_timeout):
        message = f"no final savepoint of {active} within {job.upgrade.savepoint_timeout}: {view.error or ''}"
        _warning(obj, "FinalSavepointFailed", message)
        return True
    return False


async def _record_final_savepoint(kube: Kube, obj: dict[str, Any], version: str, path: str) -> None:
    """In status, in an event, and as a FlinkStateSnapshot that outlives the StreamJob (its history)."""
    meta = obj["metadata"]
    status = StreamJobStatus.of(obj)
    savepoints = list(status.savepoints)
    if path not in {s.path for s in savepoints}:
        taken = SavepointRecord(version=version, path=path, taken_at=datetime.now(UTC), reason="Final")
        savepoints.append(taken)
        written = [s.wire() for s in savepoints[-32:]]
        await kube.patch_status(
            API_VERSION,
            "StreamJob",
            meta["namespace"],
            meta["name"],
            {"savepoints": written, "phase": "Suspended"},
        )
        crash_at("streamjob:FinalSavepoint", meta["namespace"], meta["name"])
    if (status.runtime or "FlinkDeployment") == "FlinkDeployment":
        # An FKO without FlinkStateSnapshot, or a namespace being deleted: the event is the record.
        with contextlib.suppress(NotServed, NamespaceTerminating):
            await kube.apply(_snapshot(meta, version, path))
    crash_at("streamjob:FinalSavepoint:1", meta["namespace"], meta["name"])
    _normal(obj, "FinalSavepoint", f"final savepoint of {version}: {path}")


def _snapshot(meta: dict[str, Any], version: str, path: str) -> dict[str, Any]:
    """The FlinkStateSnapshot that keeps a final savepoint known after its StreamJob is gone."""
    deployment = names.deployment_name(meta["name"], version)
    return {
        "apiVersion": FD_API,
        "kind": "FlinkStateSnapshot",
        "metadata": {
            "name": f"{deployment}-final",
            "namespace": meta["namespace"],
            "labels": {
                "app.kubernetes.io/managed-by": "kappa-operator",
                "kappa.dev/job": meta["name"],
                "kappa.dev/version": version,
                "kappa.dev/savepoint": "final",
            },
        },
        "spec": {
            "jobReference": {"kind": "FlinkDeployment", "name": deployment},
            "savepoint": {"path": path, "alreadyExists": True, "disposeOnDelete": False},
        },
    }


def _never_ran(status: StreamJobStatus) -> bool:
    """Nothing of the active version's job was ever seen running: no state a final savepoint could keep."""
    active = status.active_version
    if not active:
        return True
    seen = [d.job_state for d in status.deployments if d.version == active]
    saved = any(s.version == active for s in status.savepoints)
    return all(state in NOT_STARTED for state in seen) and not saved and status.stable_version != active
