"""Intake: parse a resource's spec and decide its first status. Runs on create, resume and every spec change.

Later machines (upgrade, canary, replay, cutover) take over from the status intake leaves behind.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from kappa.api import MaterializedViewSpec, ReplayRunSpec, StreamJobSpec
from kappa.api.base import CommonStatus
from kappa.api.conditions import progressing, stalled
from kappa.api.materializedview import MaterializedViewStatus
from kappa.api.replayrun import ReplayRunStatus
from kappa.api.streamjob_status import StreamJobStatus
from kappa.machines.decision import Decision, Event

IntakeDecision = Decision[dict[str, Any], None]
"""The state is the first status fields to merge (camelCase, as on the wire), conditions excluded."""


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{loc}: {err['msg']}")
    return "; ".join(parts)


def _parse(model: type[BaseModel], spec: dict[str, Any]) -> tuple[Any, IntakeDecision | None]:
    try:
        return model.model_validate(spec), None
    except ValidationError as exc:
        message = f"spec is invalid: {_errors(exc)}"
        return None, IntakeDecision(
            {},
            conditions=stalled("InvalidSpec", message),
            events=[Event("Warning", "InvalidSpec", message)],
        )


def _first_time(status: CommonStatus, generation: int) -> bool:
    return status.observed_generation != generation


def intake_streamjob(spec: dict[str, Any], status: StreamJobStatus, generation: int) -> IntakeDecision:
    job, invalid = _parse(StreamJobSpec, spec)
    if invalid:
        return invalid
    assert isinstance(job, StreamJobSpec)
    phase = status.phase or "Pending"
    if job.suspend:
        message = f"version {job.version}: suspend requested"
    else:
        message = f"version {job.version} accepted; waiting for its FlinkDeployment"
    events = [Event("Normal", "Accepted", message)] if _first_time(status, generation) else []
    return IntakeDecision(
        {"observedGeneration": generation, "phase": phase},
        conditions=progressing("Pending", message),
        events=events,
    )


def intake_replayrun(spec: dict[str, Any], status: ReplayRunStatus, generation: int) -> IntakeDecision:
    run, invalid = _parse(ReplayRunSpec, spec)
    if invalid:
        return invalid
    assert isinstance(run, ReplayRunSpec)
    phase = status.phase or "Pending"
    message = f"replay of {run.job_ref.name} at version {run.version} accepted; waiting for preflight"
    events = [Event("Normal", "Accepted", message)] if _first_time(status, generation) else []
    return IntakeDecision(
        {"observedGeneration": generation, "phase": phase},
        conditions=progressing("Pending", message),
        events=events,
    )


def intake_materializedview(
    spec: dict[str, Any], status: MaterializedViewStatus, generation: int
) -> IntakeDecision:
    view, invalid = _parse(MaterializedViewSpec, spec)
    if invalid:
        return invalid
    assert isinstance(view, MaterializedViewSpec)
    if status.active_version:
        message = f"serving version {status.active_version}"
    else:
        message = "no version has been cut over yet"
    events = (
        [Event("Normal", "Accepted", f"{view.backend.type} view accepted")]
        if _first_time(status, generation)
        else []
    )
    return IntakeDecision(
        {"observedGeneration": generation, "backend": view.backend.type},
        conditions=progressing("AwaitingFirstVersion" if not status.active_version else "Pending", message),
        events=events,
    )
