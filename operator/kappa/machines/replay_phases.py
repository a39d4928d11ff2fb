"""The ReplayRun: preflight → replay → catch-up → validate → approve → cut over → observe → decommission, with
abort and rollback. A pure state machine: (state, observed world, spec, now) → decision.

Each phase is one small function; the table at the bottom maps phases to them. Every phase has a deadline,
and the decision that asks for a side effect records the intent (phase, deadline, the cutover it is about to
do) in the same status write, so that a restarted operator checks the world again instead of repeating.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from kappa.api.conditions import ConditionUpdate, progressing, ready, stalled
from kappa.machines.decision import Event
from kappa.machines.lag import LagStatus
from kappa.machines.replay import (
    CreateReplay,
    CutOver,
    DecommissionPrevious,
    PromoteVersion,
    ReplayDecision,
    ReplayObserved,
    ReplaySpec,
    ReplayState,
    StopReplay,
    enter_phase,
    expired,
)
from kappa.machines.replay_abort import decide_abort, fail
from kappa.machines.runtime_facts import RUNNING


def on_pending(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    """Wait for the view to be free, under spec.timeouts.pending from the first wait."""
    if seen.holder:
        if state.deadline is None:
            state = enter_phase(state, "Pending", spec, now)  # the wait's deadline, recorded when it begins
        elif expired(state, now):
            message = (
                f"ReplayRun {seen.holder} held MaterializedView {spec.view} for longer than "
                "spec.timeouts.pending; nothing was created"
            )
            return fail(state, spec, now, "ViewHeldTooLong", message, then="nothing")
        message = f"waiting: ReplayRun {seen.holder} holds MaterializedView {spec.view}"
        return ReplayDecision(state, conditions=progressing("WaitingForView", message), requeue_after=15)
    return ReplayDecision(
        enter_phase(state, "Preflight", spec, now),
        conditions=progressing("Preflight", "checking"),
        requeue_after=1,
    )


def on_preflight(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    if seen.preflight is None:
        if expired(state, now):
            return fail(state, spec, now, "PreflightTimedOut", "preflight did not finish", then="nothing")
        return ReplayDecision(state, conditions=progressing("Preflight", "checking"), requeue_after=2)
    failed = [c for c in seen.preflight if not c.passed]
    if failed:
        message = "; ".join(f"{c.name}: {c.message}" for c in failed)
        return fail(state, spec, now, "PreflightFailed", message, then="nothing")
    message = f"replaying {spec.version} into a new output"
    return ReplayDecision(
        enter_phase(state, "Replaying", spec, now),
        actions=[CreateReplay(spec.version)],
        conditions=progressing("Replaying", message),
        events=[Event("Normal", "Replaying", message)],
        requeue_after=5,
    )


def on_replaying(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    if seen.fell_off:
        return fail(
            state,
            spec,
            now,
            "FellOffRetention",
            f"records were deleted by retention before the replay read them: {', '.join(seen.fell_off)}",
        )
    if seen.replay.lifecycle == "FAILED" or seen.replay.job_state == "FAILED":
        return fail(state, spec, now, "ReplayJobFailed", f"the replay job failed: {seen.replay.error or ''}")
    if seen.reached_target:
        if spec.bounded:
            message = f"bounded replay of {spec.version} reached its end; a sandbox backfill, no cutover"
            return ReplayDecision(
                enter_phase(state, "Succeeded", spec, now, reason="BackfillComplete"),
                actions=[StopReplay(spec.version)],
                conditions=ready("BackfillComplete", message),
                events=[Event("Normal", "BackfillComplete", message)],
            )
        return ReplayDecision(
            enter_phase(state, "CatchingUp", spec, now),
            conditions=progressing("CatchingUp", "replayed history; catching up with the head"),
            requeue_after=5,
        )
    if expired(state, now):
        return fail(state, spec, now, "ReplayTimedOut", "the replay did not reach its target in time")
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
        return fail(
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
            enter_phase(state, "Validating", spec, now, caught_up_since=None),
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
    if expired(state, now):
        return fail(
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
        if expired(state, now):
            return fail(state, spec, now, "ValidationTimedOut", "validation did not finish in time")
        return ReplayDecision(state, conditions=progressing("Validating", "validating"), requeue_after=2)
    failed = [c for c in seen.validation if not c.passed]
    if failed:
        return fail(
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
            enter_phase(state, "AwaitingApproval", spec, now),
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
    if expired(state, now):
        return fail(
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
    nxt = enter_phase(state, "CuttingOver", spec, now, cutover_from=seen.expected_target, cutover_to=to)
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
            enter_phase(state, "Observing", spec, now, cut_over_at=now),
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
    if expired(state, now):
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
        # The switch back is the run's; the StreamJob resumes the previous version itself, as it follows
        # this run into RolledBack (machines/streamjob.py, REPLAY_ENDED).
        message = f"rolling back {spec.view} to {state.cutover_from}"
        return ReplayDecision(
            enter_phase(state, "RolledBack", spec, now, reason="RollbackRequested"),
            actions=[CutOver(spec.view, state.cutover_to, state.cutover_from)],
            conditions=[
                *stalled("RolledBack", message),
                ConditionUpdate("RolledBack", True, "Requested", message),
            ],
            events=[Event("Warning", "RolledBack", message)],
        )
    if state.cut_over_at is not None and now - state.cut_over_at >= spec.rollback_window:
        message = f"{spec.version} serves {spec.view}; the previous version was decommissioned"
        return ReplayDecision(
            enter_phase(state, "Succeeded", spec, now, reason="Succeeded"),
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


def decide(state: ReplayState, seen: ReplayObserved, spec: ReplaySpec, now: datetime) -> ReplayDecision:
    aborted = decide_abort(state, seen, spec, now)
    return aborted if aborted is not None else PHASES[state.phase](state, seen, spec, now)
