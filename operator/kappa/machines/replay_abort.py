"""Stopping a ReplayRun before its cutover, with the active version untouched: a phase that fails (`fail`),
kappa.dev/abort (`decide_abort`), and a StreamJob that never appears (`waiting_for_job`). Pure; called from
replay_phases.py and the ReplayRun controller. The end states' cleanup is in replay_cleanup.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from kappa.api.conditions import progressing, stalled
from kappa.machines.decision import Event
from kappa.machines.replay import (
    BEFORE_CUTOVER,
    KEPT_FOR_INSPECTION,
    RemoveReplay,
    ReplayAction,
    ReplayDecision,
    ReplayObserved,
    ReplaySpec,
    ReplayState,
    StopReplay,
    enter_phase,
)


def fail(
    state: ReplayState,
    spec: ReplaySpec,
    now: datetime,
    reason: str,
    message: str,
    then: Literal["remove", "stop", "nothing"] = "remove",
) -> ReplayDecision:
    """Stop before cutover: the active version is untouched. What the run created goes (remove), or its job
    stops and its output stays for inspection (stop), or nothing was created (nothing)."""
    actions: list[ReplayAction] = []
    if then == "remove":
        actions.append(RemoveReplay(spec.version))
    elif then == "stop":
        actions.append(StopReplay(spec.version))
    return ReplayDecision(
        enter_phase(state, "Failed", spec, now, reason=reason),
        actions=actions,
        conditions=stalled(reason, message),
        events=[Event("Warning", reason, message)],
    )


def waiting_for_job(
    state: ReplayState, created: datetime, timeout: timedelta, now: datetime, job: str
) -> ReplayDecision:
    """The run's StreamJob does not exist (yet: Argo CD may apply the run first). Waited for under
    spec.timeouts.pending from the run's creation; then Failed, with nothing created."""
    if now < created + timeout:
        message = f"waiting for StreamJob {job} (spec.jobRef.name)"
        return ReplayDecision(state, conditions=progressing("WaitingForJob", message), requeue_after=15)
    message = (
        f"StreamJob {job} (spec.jobRef.name) did not appear within spec.timeouts.pending; nothing was created"
    )
    return ReplayDecision(
        replace(state, phase="Failed", reason="JobNotFound", entered_at=now, deadline=None),
        conditions=stalled("JobNotFound", message),
        events=[Event("Warning", "JobNotFound", message)],
    )


def _not_switched(state: ReplayState, seen: ReplayObserved) -> bool:
    """A cutover that was refused (the view was repointed) or never ran can still be aborted."""
    return (
        state.phase == "CuttingOver"
        and seen.alias_target is not None
        and seen.alias_target != state.cutover_to
    )


def decide_abort(
    state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime
) -> ReplayDecision | None:
    """kappa.dev/abort: honoured before the cutover (or a refused one) and on a run failed with its output
    kept for inspection; None when the run is past the point an abort can undo."""
    if seen.abort and state.phase == "Failed" and state.reason in KEPT_FOR_INSPECTION:
        message = "aborted by kappa.dev/abort: the output kept for inspection and the group are removed"
        return ReplayDecision(
            enter_phase(state, "Aborted", spec, now, reason="AbortRequested"),
            actions=[RemoveReplay(spec.version)],
            conditions=stalled("Aborted", message),
            events=[Event("Normal", "Aborted", message)],
        )
    if seen.abort and (state.phase in BEFORE_CUTOVER or _not_switched(state, seen)):
        message = (
            "aborted by kappa.dev/abort: what the run created is removed; the active version is untouched"
        )
        created = state.phase not in ("Pending", "Preflight")
        return ReplayDecision(
            enter_phase(state, "Aborted", spec, now, reason="AbortRequested"),
            actions=[RemoveReplay(spec.version)] if created else [],
            conditions=stalled("Aborted", message),
            events=[Event("Warning", "Aborted", message)],
        )
    return None
