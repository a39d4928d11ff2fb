"""The ReplayRun: preflight → replay → catch-up → validate → approve → cut over → observe → decommission, with
abort and rollback. A pure state machine: (state, observed world, spec, now) → decision.

Each phase is one small function; the table at the bottom maps phases to them. Every phase has a deadline,
and the decision that asks for a side effect records the intent (phase, deadline, the cutover it is about to
do) in the same status write, so that a restarted operator checks the world again instead of repeating.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from kappa.api.conditions import ConditionUpdate, progressing, ready, stalled
from kappa.api.replayrun import ReplayPhase
from kappa.machines.decision import Event
from kappa.machines.lag import LagStatus
from kappa.machines.preflight import Check
from kappa.machines.upgrade import RUNNING, Deployment

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

    @property
    def key(self) -> str:
        return f"cutover/{self.view}/{self.expected}->{self.to}"


@dataclass(frozen=True)
class PromoteVersion:
    """The replayed version becomes the StreamJob's live version; the previous one waits at a savepoint."""

    version: str
    key: str = "promote"


@dataclass(frozen=True)
class ResumePrevious:
    key: str = "resume-previous"


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


ReplayAction = (
    CreateReplay
    | CutOver
    | PromoteVersion
    | ResumePrevious
    | RemoveReplay
    | DecommissionPrevious
    | StopReplay
)


@dataclass(frozen=True)
class ReplayDecision:
    state: ReplayState
    actions: list[ReplayAction] = field(default_factory=list)
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def _to(state: ReplayState, phase: Phase, spec: ReplaySpec, now: datetime, **changes: object) -> ReplayState:
    timeout = spec.timeouts.get(phase)
    deadline = now + timeout if timeout is not None else None
    return replace(state, phase=phase, entered_at=now, deadline=deadline, **changes)  # type: ignore[arg-type]


def _expired(state: ReplayState, now: datetime) -> bool:
    return state.deadline is not None and now >= state.deadline


def _fail(
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
        _to(state, "Failed", spec, now, reason=reason),
        actions=actions,
        conditions=stalled(reason, message),
        events=[Event("Warning", reason, message)],
    )


def on_pending(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    """Wait for the view to be free, under spec.timeouts.pending from the first wait."""
    if seen.holder:
        if state.deadline is None:
            state = _to(state, "Pending", spec, now)  # the wait's deadline, recorded when it begins
        elif _expired(state, now):
            message = (
                f"ReplayRun {seen.holder} held MaterializedView {spec.view} for longer than "
                "spec.timeouts.pending; nothing was created"
            )
            return _fail(state, spec, now, "ViewHeldTooLong", message, then="nothing")
        message = f"waiting: ReplayRun {seen.holder} holds MaterializedView {spec.view}"
        return ReplayDecision(state, conditions=progressing("WaitingForView", message), requeue_after=15)
    return ReplayDecision(
        _to(state, "Preflight", spec, now), conditions=progressing("Preflight", "checking"), requeue_after=1
    )


def on_preflight(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    if seen.preflight is None:
        if _expired(state, now):
            return _fail(state, spec, now, "PreflightTimedOut", "preflight did not finish", then="nothing")
        return ReplayDecision(state, conditions=progressing("Preflight", "checking"), requeue_after=2)
    failed = [c for c in seen.preflight if not c.passed]
    if failed:
        message = "; ".join(f"{c.name}: {c.message}" for c in failed)
        return _fail(state, spec, now, "PreflightFailed", message, then="nothing")
    message = f"replaying {spec.version} into a new output"
    return ReplayDecision(
        _to(state, "Replaying", spec, now),
        actions=[CreateReplay(spec.version)],
        conditions=progressing("Replaying", message),
        events=[Event("Normal", "Replaying", message)],
        requeue_after=5,
    )


def on_replaying(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    if seen.fell_off:
        return _fail(
            state,
            spec,
            now,
            "FellOffRetention",
            f"records were deleted by retention before the replay read them: {', '.join(seen.fell_off)}",
        )
    if seen.replay.lifecycle == "FAILED" or seen.replay.job_state == "FAILED":
        return _fail(state, spec, now, "ReplayJobFailed", f"the replay job failed: {seen.replay.error or ''}")
    if seen.reached_target:
        if spec.bounded:
            message = f"bounded replay of {spec.version} reached its end; a sandbox backfill, no cutover"
            return ReplayDecision(
                _to(state, "Succeeded", spec, now, reason="BackfillComplete"),
                actions=[StopReplay(spec.version)],
                conditions=ready("BackfillComplete", message),
                events=[Event("Normal", "BackfillComplete", message)],
            )
        return ReplayDecision(
            _to(state, "CatchingUp", spec, now),
            conditions=progressing("CatchingUp", "replayed history; catching up with the head"),
            requeue_after=5,
        )
    if _expired(state, now):
        return _fail(state, spec, now, "ReplayTimedOut", "the replay did not reach its target in time")
    return ReplayDecision(
        state,
        actions=[CreateReplay(spec.version)],
        conditions=progressing("Replaying", "replaying"),
        requeue_after=5,
    )


def on_catching_up(
    state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime
) -> ReplayDecision:
    if seen.fell_off:
        return _fail(
            state, spec, now, "FellOffRetention", f"records deleted before read: {', '.join(seen.fell_off)}"
        )
    caught_up = (
        seen.replay.job_state == RUNNING
        and seen.replay.last_checkpoint_at is not None
        and seen.max_partition_lag is not None
        and seen.max_partition_lag <= spec.max_lag_records
        and seen.lag_status in (LagStatus.OK, LagStatus.WARN)
    )
    since = (state.caught_up_since or now) if caught_up else None
    if since is not None and now - since >= spec.stable_for:
        return ReplayDecision(
            _to(state, "Validating", spec, now, caught_up_since=None),
            conditions=[
                *progressing("Validating", "caught up; validating"),
                ConditionUpdate(
                    "CaughtUp",
                    True,
                    "LagWithinBounds",
                    f"every partition within {spec.max_lag_records} records for {spec.stable_for}",
                ),
            ],
            events=[Event("Normal", "CaughtUp", "caught up with live")],
            requeue_after=1,
        )
    if _expired(state, now):
        return _fail(
            state,
            spec,
            now,
            "CatchUpTimedOut",
            f"lag {seen.max_partition_lag} did not stay within {spec.max_lag_records} in time",
        )
    return ReplayDecision(
        replace(state, caught_up_since=since),
        conditions=progressing(
            "CatchingUp", f"max partition lag {seen.max_partition_lag}, allowed {spec.max_lag_records}"
        ),
        requeue_after=5,
    )


def on_validating(
    state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime
) -> ReplayDecision:
    if seen.validation is None:
        if _expired(state, now):
            return _fail(state, spec, now, "ValidationTimedOut", "validation did not finish in time")
        return ReplayDecision(state, conditions=progressing("Validating", "validating"), requeue_after=2)
    failed = [c for c in seen.validation if not c.passed]
    if failed:
        return _fail(
            state,
            spec,
            now,
            "ValidationFailed",
            "; ".join(f"{c.name}: {c.message}" for c in failed),
            then="stop",
        )  # the output is kept for inspection; an abort removes it
    validated = ConditionUpdate("Validated", True, "GatesPassed", f"{len(seen.validation)} gate(s) passed")
    if spec.approval == "Manual" and not seen.approve:
        return ReplayDecision(
            _to(state, "AwaitingApproval", spec, now),
            conditions=[
                *progressing("AwaitingApproval", "validated; waiting for kappa.dev/approve"),
                validated,
            ],
            events=[Event("Normal", "AwaitingApproval", "validated; approve with kubectl kappa approve")],
        )
    return _start_cutover(state, seen, spec, now, [validated])


def on_awaiting_approval(
    state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime
) -> ReplayDecision:
    if seen.approve:
        return _start_cutover(state, seen, spec, now, [])
    if _expired(state, now):
        return _fail(
            state, spec, now, "ApprovalTimedOut", "no kappa.dev/approve before the deadline", then="stop"
        )
    return ReplayDecision(
        state, conditions=progressing("AwaitingApproval", "waiting for kappa.dev/approve"), requeue_after=10
    )


def _start_cutover(
    state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime, extra: list[ConditionUpdate]
) -> ReplayDecision:
    assert spec.view is not None
    to = spec.version
    # The precondition is what the operator recorded, not what is there now: a view repointed by hand since
    # must make the switch fail, not become its starting point.
    nxt = _to(state, "CuttingOver", spec, now, cutover_from=seen.expected_target, cutover_to=to)
    return ReplayDecision(
        nxt,
        actions=[CutOver(spec.view, seen.expected_target, to)],
        conditions=[*progressing("CuttingOver", f"switching {spec.view} to {to}"), *extra],
        requeue_after=1,
    )


def on_cutting_over(
    state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime
) -> ReplayDecision:
    assert spec.view is not None and state.cutover_to is not None
    if seen.alias_target == state.cutover_to:
        message = f"{spec.view} now serves {state.cutover_to} (was {state.cutover_from})"
        return ReplayDecision(
            _to(state, "Observing", spec, now, cut_over_at=now),
            actions=[PromoteVersion(spec.version)],
            conditions=[
                *progressing("Observing", message),
                ConditionUpdate("CutOver", True, "Switched", message),
            ],
            events=[Event("Normal", "CutOver", message)],
            requeue_after=5,
        )
    if seen.alias_target != state.cutover_from:
        return ReplayDecision(
            state,
            conditions=stalled(
                "AliasMoved",
                f"{spec.view} reads {seen.alias_target}, not {state.cutover_from}: someone repointed it; "
                "the cutover was refused and nothing was changed",
            ),
            requeue_after=30,
        )
    if _expired(state, now):
        return ReplayDecision(
            state,
            conditions=stalled("CutoverTimedOut", f"{spec.view} was not switched in time"),
            requeue_after=30,
        )
    return ReplayDecision(
        state,
        actions=[CutOver(spec.view, state.cutover_from, state.cutover_to)],
        conditions=progressing("CuttingOver", f"switching {spec.view}"),
        requeue_after=1,
    )


def on_observing(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    assert spec.view is not None
    if seen.rollback:
        if not seen.previous_exists or state.cutover_from is None:
            return ReplayDecision(
                state, events=[Event("Warning", "RollbackUnavailable", "nothing to roll back to")]
            )
        message = f"rolling back {spec.view} to {state.cutover_from}"
        return ReplayDecision(
            _to(state, "RolledBack", spec, now, reason="RollbackRequested"),
            actions=[CutOver(spec.view, state.cutover_to, state.cutover_from), ResumePrevious()],
            conditions=[
                *stalled("RolledBack", message),
                ConditionUpdate("RolledBack", True, "Requested", message),
            ],
            events=[Event("Warning", "RolledBack", message)],
        )
    if state.cut_over_at is not None and now - state.cut_over_at >= spec.rollback_window:
        message = f"{spec.version} serves {spec.view}; the previous version was decommissioned"
        return ReplayDecision(
            _to(state, "Succeeded", spec, now, reason="Succeeded"),
            actions=[DecommissionPrevious()],
            conditions=ready("Succeeded", message),
            events=[Event("Normal", "Succeeded", message)],
        )
    return ReplayDecision(
        state,
        conditions=progressing(
            "Observing", f"rollback window open until {(state.cut_over_at or now) + spec.rollback_window}"
        ),
        requeue_after=10,
    )


def on_final(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    return ReplayDecision(state)


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


def cleanup_overdue(state: ReplayState, timeout: timedelta, now: datetime) -> bool:
    """An end state's cleanup is retried under spec.timeouts.cleanup from entering the end state."""
    return state.entered_at is not None and now >= state.entered_at + timeout


DEADLINES: dict[str, str] = {
    "Pending": "spec.timeouts.pending (waiting for the StreamJob or the view), then Failed",
    "Preflight": "spec.timeouts.preflight, then Failed",
    "Replaying": "spec.timeouts.replaying, then Failed",
    "CatchingUp": "spec.catchUp.timeout, then Failed",
    "Validating": "spec.validation.timeout, then Failed",
    "AwaitingApproval": "spec.timeouts.awaitingApproval, then Failed (ApprovalTimedOut)",
    "CuttingOver": "spec.timeouts.cuttingOver, then Failed",
    "Observing": "spec.rollbackWindow, then Succeeded",
    "Succeeded": "none: at rest; its cleanup has spec.timeouts.cleanup, then cleanup Failed",
    "Failed": "none: at rest; its cleanup has spec.timeouts.cleanup, then cleanup Failed",
    "Aborted": "none: at rest; its cleanup has spec.timeouts.cleanup, then cleanup Failed",
    "RolledBack": "none: at rest; its cleanup has spec.timeouts.cleanup, then cleanup Failed",
}
"""What bounds each phase, for the table test and the docs."""


PHASES: dict[str, Callable[[ReplayState, ReplayObserved, ReplaySpec, datetime], ReplayDecision]] = {
    "Pending": on_pending,
    "Preflight": on_preflight,
    "Replaying": on_replaying,
    "CatchingUp": on_catching_up,
    "Validating": on_validating,
    "AwaitingApproval": on_awaiting_approval,
    "CuttingOver": on_cutting_over,
    "Observing": on_observing,
    "Succeeded": on_final,
    "Failed": on_final,
    "Aborted": on_final,
    "RolledBack": on_final,
}


def _not_switched(state: ReplayState, seen: ReplayObserved) -> bool:
    """A cutover that was refused (the view was repointed) or never ran can still be aborted."""
    return (
        state.phase == "CuttingOver"
        and seen.alias_target is not None
        and seen.alias_target != state.cutover_to
    )


def decide(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    if seen.abort and state.phase == "Failed" and state.reason in KEPT_FOR_INSPECTION:
        message = "aborted by kappa.dev/abort: the output kept for inspection and the group are removed"
        return ReplayDecision(
            _to(state, "Aborted", spec, now, reason="AbortRequested"),
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
            _to(state, "Aborted", spec, now, reason="AbortRequested"),
            actions=[RemoveReplay(spec.version)] if created else [],
            conditions=stalled("Aborted", message),
            events=[Event("Warning", "Aborted", message)],
        )
    return PHASES[state.phase](state, seen, spec, now)
