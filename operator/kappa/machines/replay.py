"""The ReplayRun machine's vocabulary: its phases and end states, the part of status it owns (`ReplayState`),
what it is given (`ReplaySpec`, `ReplayObserved`), the actions it asks for (create the replay, cut over,
promote, remove, stop, decommission) and what it returns (`ReplayDecision`).

The machine itself (one function per phase, the phase table, `decide`) is in replay_phases.py; failing before
the cutover and an abort are in replay_abort.py; the end states' cleanup in replay_cleanup.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from kappa.api.replayrun import ReplayPhase
from kappa.machines.decision import Decision
from kappa.machines.lag import LagStatus
from kappa.machines.preflight import Check
from kappa.machines.runtime_facts import Deployment

Phase = ReplayPhase
FINAL: frozenset[str] = frozenset({"Succeeded", "Failed", "Aborted", "RolledBack"})
KEPT_FOR_INSPECTION: frozenset[str] = frozenset({"ValidationFailed", "ApprovalTimedOut"})
"""Failures that stop the replay job but keep its output and group until an abort or deletion."""
BEFORE_CUTOVER: frozenset[str] = frozenset(
    {"Pending", "Preflight", "Replaying", "CatchingUp", "Validating", "AwaitingApproval"}
)


@dataclass(frozen=True)
class ReplaySpec:
    version: str
    view: str | None
    """The MaterializedView to cut over; None for a bounded replay (a sandbox backfill)."""
    bounded: bool
    approval: Literal["Automatic", "Manual"]
    max_lag_records: int
    stable_for: timedelta
    rollback_window: timedelta
    timeouts: dict[str, timedelta]
    """Deadline of each working phase, by phase name."""


@dataclass(frozen=True)
class ReplayObserved:
    preflight: tuple[Check, ...] | None = None
    holder: str | None = None
    """Another ReplayRun that holds the same MaterializedView."""
    replay: Deployment = field(default_factory=lambda: Deployment(exists=False))
    max_partition_lag: int | None = None
    lag_status: LagStatus = LagStatus.OK
    reached_target: bool = False
    """Bounded: the group reached the end offsets. Live: consumed up to the head seen at the start."""
    fell_off: tuple[str, ...] = ()
    validation: tuple[Check, ...] | None = None
    alias_target: str | None = None
    """The version the view serves now, as seen."""
    expected_target: str | None = None
    """The version the operator recorded as active: the compare-and-swap precondition of the cutover."""
    approve: bool = False
    abort: bool = False
    rollback: bool = False
    previous_exists: bool = True


@dataclass(frozen=True)
class ReplayState:
    phase: Phase = "Pending"
    entered_at: datetime | None = None
    deadline: datetime | None = None
    caught_up_since: datetime | None = None
    cutover_from: str | None = None
    """The alias target before the cutover: the compare-and-swap precondition, and the rollback target."""
    cutover_to: str | None = None
    cut_over_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CreateReplay:
    """Seed the new group at the start offsets, create the output, deploy the replay job. Each part checks the
    world first (group seeded with these offsets? output there? deployment there?)."""

    version: str
    key: str = "create-replay"


@dataclass(frozen=True)
class CutOver:
    view: str
    expected: str | None
    to: str


@dataclass(frozen=True)
class PromoteVersion:
    """The replayed version becomes the StreamJob's live version; the previous one waits at a savepoint."""

    version: str
    key: str = "promote"


@dataclass(frozen=True)
class RemoveReplay:
    """Delete the replay's deployment, consumer group and output: only ever before a cutover."""

    version: str
    key: str = "remove-replay"


@dataclass(frozen=True)
class DecommissionPrevious:
    """After the rollback window: the previous version's deployment and group go; its output: retention."""

    key: str = "decommission-previous"


@dataclass(frozen=True)
class StopReplay:
    """The replay job stops: its deployment and quota go; its group and output stay, for inspection (a failed
    validation) or as the result (a bounded backfill). An abort removes them later."""

    version: str
    key: str = "stop-replay"


ReplayAction = CreateReplay | CutOver | PromoteVersion | RemoveReplay | DecommissionPrevious | StopReplay


ReplayDecision = Decision[ReplayState, ReplayAction]
"""What the machine returns: the next state, the actions carrying it out (controllers/replayrun/actions.py's
CARRY_OUT), conditions, events and when to look again."""


def next_look(decision: ReplayDecision, interval: float) -> float:
    """Seconds until the run is looked at again: what the phase asked (`requeue_after`: soon while something
    is about to move), never later than the interval nor sooner than a second; the interval otherwise."""
    asked = decision.requeue_after
    return interval if asked is None else max(1.0, min(interval, asked))


def enter_phase(
    state: ReplayState, phase: Phase, spec: ReplaySpec, now: datetime, **changes: object
) -> ReplayState:
    timeout = spec.timeouts.get(phase)
    deadline = now + timeout if timeout is not None else None
    return replace(state, phase=phase, entered_at=now, deadline=deadline, **changes)  # type: ignore[arg-type]


def expired(state: ReplayState, now: datetime) -> bool:
    return state.deadline is not None and now >= state.deadline


def cleanup_overdue(state: ReplayState, timeout: timedelta, now: datetime) -> bool:
    """An end state's cleanup is retried under spec.timeouts.cleanup from entering the end state."""
    return state.entered_at is not None and now >= state.entered_at + timeout
