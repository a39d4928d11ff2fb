"""Requests the savepoint upgrade honours besides a new spec.version: `spec.suspend` (suspend with a
savepoint, resume from it), `kappa.dev/rollback` (a manual rollback to the previous version's savepoint), and
a ReplayRun's cutover or rollback (adopting the version it made live). Pure; called from savepoint_upgrade.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kappa.api.conditions import ConditionUpdate, progressing, ready, stalled
from kappa.machines.decision import Event
from kappa.machines.runtime_facts import RUNNING
from kappa.machines.upgrade import (
    Action,
    Apply,
    Delete,
    Observed,
    UpgradeDecision,
    UpgradeSpec,
    UpgradeState,
    enter_step,
    quiet,
)


def _at_rest(state: UpgradeState, **changes: object) -> UpgradeState:
    """Idle with nothing under way: no deadline, nothing overdue."""
    return UpgradeState(**{**state.__dict__, "deadline": None, "overdue": False, **changes})


def _waiting(
    state: UpgradeState,
    now: datetime,
    timeout: timedelta,
    action: Action,
    reason: str,
    message: str,
    overdue_reason: str,
    overdue_message: str,
) -> UpgradeDecision:
    """A suspend, resume or adoption under way in Idle: asked for again on every look, under a deadline set
    when it began. Past it, the job is Stalled with what did not happen (one event), and still asked for."""
    if state.deadline is None:
        return UpgradeDecision(
            UpgradeState(**{**state.__dict__, "deadline": now + timeout, "overdue": False}),
            actions=[action],
            conditions=progressing(reason, message),
            requeue_after=2,
        )
    if now < state.deadline:
        return UpgradeDecision(
            state, actions=[action], conditions=progressing(reason, message), requeue_after=2
        )
    return UpgradeDecision(
        UpgradeState(**{**state.__dict__, "overdue": True}),
        actions=[action],
        conditions=stalled(overdue_reason, overdue_message),
        events=[] if state.overdue else [Event("Warning", overdue_reason, overdue_message)],
        requeue_after=10,
    )


def decide_suspension(
    state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime
) -> UpgradeDecision:
    """spec.suspend stops the active version with a savepoint; clearing it resumes from that savepoint. Both
    are under a deadline: savepointTimeout for the suspend, readinessTimeout for the resume."""
    assert state.active is not None
    dep = seen.of(state.active)
    if spec.suspend:
        stopped = dep.job_state in ("FINISHED", "SUSPENDED", None) or dep.lifecycle == "SUSPENDED"
        if dep.desired_state == "suspended" and dep.upgrade_savepoint_path and stopped:
            message = f"{state.active} is suspended at savepoint {dep.upgrade_savepoint_path}"
            nxt = _at_rest(state, savepoint=dep.upgrade_savepoint_path)
            # A suspend under way has a deadline: its end is said once, not by the looks at rest after it.
            said = [Event("Normal", "Suspended", message)] if state.deadline is not None else []
            return UpgradeDecision(nxt, conditions=ready("Suspended", message), events=said)
        if dep.error and dep.desired_state == "suspended":
            message = f"suspending {state.active} failed: {dep.error}"
            return UpgradeDecision(
                UpgradeState(**{**state.__dict__, "overdue": True}),
                actions=[Apply(state.active, "suspended")],
                conditions=stalled("SavepointFailed", message),
                events=[] if state.overdue else [Event("Warning", "SavepointFailed", message)],
                requeue_after=10,
            )
        if dep.desired_state != "suspended" and state.deadline is None:
            # Begun once: a deployment that does not take the change yet keeps this deadline, and no event
            # or status write is repeated at every look.
            return UpgradeDecision(
                UpgradeState(
                    **{**state.__dict__, "deadline": now + spec.savepoint_timeout, "overdue": False}
                ),
                actions=[Apply(state.active, "suspended")],
                conditions=progressing("Suspending", f"suspending {state.active} with a savepoint"),
                events=[Event("Normal", "Suspending", f"suspending {state.active}")],
                requeue_after=2,
            )
        return _waiting(
            state,
            now,
            spec.savepoint_timeout,
            Apply(state.active, "suspended"),
            "Suspending",
            f"suspending {state.active} with a savepoint",
            "SuspendTimedOut",
            f"{state.active} took no savepoint within spec.upgrade.savepointTimeout "
            f"({spec.savepoint_timeout}); still asking for it",
        )
    if dep.desired_state == "suspended" and state.deadline is None:
        message = f"resuming {state.active} from {dep.upgrade_savepoint_path}"
        return UpgradeDecision(
            UpgradeState(**{**state.__dict__, "deadline": now + spec.readiness_timeout, "overdue": False}),
            actions=[Apply(state.active, "running")],
            conditions=progressing("Resuming", message),
            events=[Event("Normal", "Resuming", message)],
            requeue_after=2,
        )
    if dep.job_state != RUNNING or dep.desired_state == "suspended":
        return _waiting(
            state,
            now,
            spec.readiness_timeout,
            Apply(state.active, "running"),
            "Resuming",
            f"waiting for {state.active} to run",
            "ResumeTimedOut",
            f"{state.active} is not running within spec.upgrade.readinessTimeout ({spec.readiness_timeout}) "
            f"of being resumed or adopted: it is {dep.job_state or 'not started'}"
            + (f" ({dep.error})" if dep.error else "")
            + "; still asking for it",
        )
    message = f"version {state.active} is active"
    # A resume or an adoption under way has a deadline: the version running is said once, when it ends.
    said = (
        [Event("Normal", "Resumed", f"version {state.active} runs and is active")] if state.deadline else []
    )
    return UpgradeDecision(
        _at_rest(state),
        actions=quiet(state.active, seen, spec),
        conditions=ready("Running", message),
        events=said,
    )


def decide_manual_rollback(
    state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime
) -> UpgradeDecision:
    """kappa.dev/rollback: the same as an automatic rollback, to the previous version's recorded savepoint."""
    if state.step == "Starting":
        back_to, current = state.active, state.target
    else:
        back_to, current = state.previous, state.active
    if not back_to or not state.savepoint or not seen.of(back_to).exists:
        message = "rollback requested, but no previous version is kept with a savepoint (window over?)"
        return UpgradeDecision(
            state,
            events=[Event("Warning", "RollbackUnavailable", message)],
            conditions=[ConditionUpdate("RolledBack", False, "RollbackUnavailable", message)],
        )
    nxt = enter_step(
        state,
        "RollingBack",
        now,
        spec.readiness_timeout,
        active=back_to,
        target=None,
        failed_version=current,
        previous=None,
        healthy_since=None,
    )
    message = f"rollback requested: stopping {current}, resuming {back_to} from {state.savepoint}"
    resume = Apply(back_to, "running", initial_savepoint=state.savepoint)
    return UpgradeDecision(
        nxt,
        actions=[Delete(current), resume] if current else [resume],
        conditions=progressing("RollingBack", message),
        events=[Event("Warning", "RollingBack", message)],
        requeue_after=2,
    )


def decide_adoption(state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime) -> UpgradeDecision:
    """A ReplayRun's cutover (or its rollback) decided the live version: the replayed deployment runs already,
    or the previous one waits at its final savepoint. The old active version is suspended with a savepoint."""
    old = state.active
    nxt = UpgradeState(
        **{
            **state.__dict__,
            "active": spec.version,
            "target": None,
            "previous": old,
            "failed_version": None,
            "healthy_since": None,
            "entered_at": now,
            "deadline": now + spec.readiness_timeout,  # for the adopted version to run (decide_suspension)
            "overdue": False,
        }
    )
    message = f"version {spec.version} is live after a replay cutover" + (
        f"; {old} is suspended" if old else ""
    )
    actions: list[Action] = [Apply(spec.version, "running")]
    if old:
        actions.append(Apply(old, "suspended"))
    return UpgradeDecision(
        nxt,
        actions=actions,
        conditions=progressing("Adopting", message),
        events=[Event("Normal", "Adopted", message)],
        requeue_after=2,
    )
