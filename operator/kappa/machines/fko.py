"""Reading a FlinkDeployment's FKO status into what the machines judge. Pure.

FKO 1.10 reports no restart count, so restarts are counted here from observed transitions into RESTARTING or
FAILING, carried between observations in the StreamJob's status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kappa.machines.upgrade import Deployment

RESTARTING_STATES = {"RESTARTING", "FAILING"}


def _ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC) if value not in (None, "", 0, "0") else None
    except (TypeError, ValueError):
        return None


def count_restarts(
    previous_count: int,
    previous_state: str | None,
    state: str | None,
    previous_update: str | None = None,
    update: str | None = None,
) -> int:
    """One more restart each time the job is newly seen restarting or failing, or when it is RUNNING before
    and after but FKO's jobStatus.updateTime moved: a whole restart happened between two looks."""
    if state in RESTARTING_STATES and previous_state not in RESTARTING_STATES:
        return previous_count + 1
    moved = previous_update is not None and update is not None and update != previous_update
    if moved and previous_state == state == "RUNNING":
        return previous_count + 1
    return previous_count


def job_update_time(fd: dict[str, Any] | None) -> str | None:
    value = (((fd or {}).get("status") or {}).get("jobStatus") or {}).get("updateTime")
    return str(value) if value not in (None, "") else None


def deployment_view(fd: dict[str, Any] | None, *, restarts: int = 0) -> Deployment:
    if fd is None:
        return Deployment(exists=False)
    status = fd.get("status") or {}
    job = status.get("jobStatus") or {}
    savepoint = ((job.get("savepointInfo") or {}).get("lastSavepoint")) or {}
    checkpoint = ((job.get("checkpointInfo") or {}).get("lastCheckpoint")) or {}
    error = status.get("error") or None
    return Deployment(
        exists=True,
        desired_state=(fd.get("spec", {}).get("job", {}).get("state") or "running"),
        job_state=job.get("state"),
        lifecycle=status.get("lifecycleState"),
        upgrade_savepoint_path=job.get("upgradeSavepointPath") or savepoint.get("location") or None,
        savepoint_at=_ms(savepoint.get("timeStamp")),
        last_checkpoint_at=_ms(checkpoint.get("timeStamp")),
        started_at=_ms(job.get("startTime")),
        restarts=restarts,
        error=error,
        new_exceptions=1 if error and job.get("state") != "FINISHED" else 0,
    )


def observed_generation_current(fd: dict[str, Any]) -> bool:
    """FKO has acted on the latest spec."""
    return bool(
        (fd.get("status") or {}).get("observedGeneration") == fd.get("metadata", {}).get("generation")
    )


def kafka_topic_ready(topic: dict[str, Any] | None) -> tuple[bool, str]:
    """Strimzi: ready only with Ready=True for the current generation."""
    if topic is None:
        return False, "KafkaTopic not created yet"
    status = topic.get("status") or {}
    generation = topic.get("metadata", {}).get("generation")
    if status.get("observedGeneration") != generation:
        return False, "the topic operator has not seen the latest spec"
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return False, "no Ready condition yet"
    if ready.get("status") != "True":
        return False, f"Ready=False, {ready.get('reason', 'NotReady')}: {ready.get('message', '')}"
    return True, "ready"
