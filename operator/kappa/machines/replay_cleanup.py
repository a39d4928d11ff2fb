"""A ReplayRun's end states and their cleanup: which work each end state needs (stop the replay,
decommission the previous version, remove what the run created, switch a rolled-back view back), and how that
cleanup ends: Done with a CleanedUp event, retried, or Failed past spec.timeouts.cleanup with a Stalled
condition naming what is left for a human to remove. Pure: controllers/replayrun/cleanup.py carries it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from kappa.api.conditions import ConditionUpdate, stalled
from kappa.machines.decision import Event
from kappa.machines.replay import KEPT_FOR_INSPECTION, ReplayState, cleanup_overdue

EndWork = Literal["StopReplay", "Decommission", "Remove", "SwitchBack", "Nothing"]
"""StopReplay: the replay job and its quota go, its group and output stay. Decommission: the previous
version's deployment and group go. Remove: the replay's deployment, group, quota and output go. SwitchBack:
the view reads the version it read before the cutover again (a rollback's switch, made sure of)."""

REMOVED = "the replay's deployment, consumer group and output are removed"
WAITING = "it was still waiting (e.g. for a consumer group to empty)"


@dataclass(frozen=True)
class EndRow:
    phase: str
    reasons: frozenset[str] | None
    """The reasons this row is for; None: any reason (rows are matched in order)."""
    work: EndWork
    cleaned: str
    """What the CleanedUp event says once the work is done."""


END_STATES: tuple[EndRow, ...] = (
    EndRow(
        "Succeeded",
        frozenset({"BackfillComplete"}),
        "StopReplay",
        "the backfill's deployment is removed; its output and consumer group stay",
    ),
    EndRow(
        "Succeeded",
        None,
        "Decommission",
        "the previous version's deployment and consumer group are decommissioned",
    ),
    EndRow(
        "Failed",
        KEPT_FOR_INSPECTION,
        "StopReplay",
        "the replay job is stopped; its output and group stay for inspection until an abort",
    ),
    EndRow("Failed", None, "Remove", REMOVED),
    EndRow("Aborted", None, "Remove", REMOVED),
    EndRow("RolledBack", None, "SwitchBack", "the view serves {cutover_from} again"),
)
"""End state → its cleanup; the first row that matches wins."""


def _row(state: ReplayState) -> EndRow | None:
    for row in END_STATES:
        if row.phase == state.phase and (row.reasons is None or state.reason in row.reasons):
            return row
    return None


def end_work(state: ReplayState, job_known: bool) -> EndWork:
    """The cleanup an end state needs. A rollback's switch back needs the StreamJob (to name what the view
    reads): without it there is nothing to switch."""
    row = _row(state)
    if row is None or (row.work == "SwitchBack" and not job_known):
        return "Nothing"
    return row.work


def cleaned_message(state: ReplayState) -> str:
    row = _row(state)
    return row.cleaned.format(cutover_from=state.cutover_from) if row else REMOVED


@dataclass(frozen=True)
class CleanupOutcome:
    """What the status gets after one attempt at an end state's cleanup."""

    cleanup: Literal["Done", "Failed"] | None = None
    """status.cleanup; None: unchanged (still Pending, tried again on the next look)."""
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    retrying: str | None = None
    """A failed attempt, said once (a CleanupFailed Warning) while it is retried."""

    @property
    def writes(self) -> bool:
        return self.cleanup is not None or self.retrying is not None


def after_cleanup(
    state: ReplayState,
    done: bool,
    error: str | None,
    timeout: timedelta,
    now: datetime,
    left: tuple[tuple[str, str | None], ...],
) -> CleanupOutcome:
    """One attempt's end: Done; or retried (said once when it failed); or, past spec.timeouts.cleanup from
    entering the end state, Failed, naming what is left (`left`: what, name) for a human to remove."""
    overdue = cleanup_overdue(state, timeout, now)
    if error is not None:
        if overdue:
            return _failed(f"the last attempt failed: {error}", left)
        return CleanupOutcome(retrying=f"cleanup failed, retrying: {error}")
    if not done:
        return _failed(WAITING, left) if overdue else CleanupOutcome()
    return CleanupOutcome("Done", events=[Event("Normal", "CleanedUp", cleaned_message(state))])


def _failed(why: str, left: tuple[tuple[str, str | None], ...]) -> CleanupOutcome:
    named = ", ".join(f"{what} {value}" for what, value in left if value)
    message = (
        f"cleanup did not complete within spec.timeouts.cleanup ({why}); check and remove by hand: {named}"
    )
    return CleanupOutcome(
        "Failed", stalled("CleanupFailed", message), [Event("Warning", "CleanupTimedOut", message)]
    )
