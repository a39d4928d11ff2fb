"""The StreamJob savepoint upgrade, with automatic rollback: a pure state machine.

    Idle ─version change─▶ Savepointing ─savepoint recorded─▶ Starting ─gates pass─▶ Idle (new active)
                             │ failed / deadline                 │ gates fail / deadline
                             ▼                                   ▼
                           Idle (old resumed, Stalled)        RollingBack ─old running─▶ RolledBack

A first deploy goes Idle → Starting directly. Every step has a deadline; intent (the step and its target) is
in the status patch of the same decision that asks for the side effect, and every action is idempotent, so a
crash between the two repeats nothing that matters and skips nothing.

Its vocabulary (state, spec, actions, gates) is in upgrade.py; suspend/resume, kappa.dev/rollback and the
adoption of a replayed version are in upgrade_requests.py. The step table is at the bottom.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from kappa.api.conditions import ConditionUpdate, progressing, ready, stalled
from kappa.machines.decision import Event
from kappa.machines.runtime_facts import RUNNING, Deployment
from kappa.machines.upgrade import (
    Apply,
    Delete,
    Observed,
    Step,
    UpgradeDecision,
    UpgradeSpec,
    UpgradeState,
    enter_step,
    expired,
    gates,
    quiet,
)
from kappa.machines.upgrade_requests import decide_adoption, decide_manual_rollback, decide_suspension


def decide_idle(state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime) -> UpgradeDecision:
    if spec.adopt and spec.version != state.active and not spec.suspend:
        return decide_adoption(state, seen, spec, now)
    if state.active is not None and (spec.suspend or spec.version == state.active):
        return decide_suspension(state, seen, spec, now)
    if spec.version == state.failed_version and state.active is None:
        # A first deploy has nothing to roll back to: it keeps running for inspection, and is taken as soon as
        # it turns healthy after all.
        results = gates(seen.of(spec.version), spec, seen.lag_growing)
        if all(g.passed for g in results):
            nxt = UpgradeState(**{**state.__dict__, "active": spec.version, "failed_version": None})
            message = f"version {spec.version} recovered and passes its readiness gates"
            return UpgradeDecision(
                nxt,
                conditions=ready("Running", message),
                gates=results,
                events=[Event("Normal", "Recovered", message)],
            )
        why = "; ".join(g.message for g in results if not g.passed)
        return UpgradeDecision(
            state,
            gates=results,
            conditions=stalled(
                "ReadinessGatesFailed",
                f"version {spec.version} did not become ready within {spec.readiness_timeout} "
                f"({why}); it is left running for inspection",
            ),
        )
    if spec.version == state.failed_version:
        return UpgradeDecision(
            state,
            actions=quiet(state.active, seen, spec),  # the active version stays, at rest
            conditions=stalled(
                "UpgradeFailed",
                f"version {spec.version} failed its upgrade; {state.active} stays active. "
                "Change spec.version to retry or to go back.",
            ),
        )
    if state.active is None:
        nxt = enter_step(state, "Starting", now, spec.readiness_timeout, target=spec.version, savepoint=None)
        return UpgradeDecision(
            nxt,
            actions=[Apply(spec.version, "running")],
            conditions=progressing("Deploying", f"deploying version {spec.version}"),
            events=[Event("Normal", "Deploying", f"deploying version {spec.version}")],
            requeue_after=5,
        )
    nxt = enter_step(state, "Savepointing", now, spec.savepoint_timeout, target=spec.version, savepoint=None)
    message = f"upgrading {state.active} → {spec.version}: suspending {state.active} with a savepoint"
    return UpgradeDecision(
        nxt,
        actions=[Apply(state.active, "suspended")],
        conditions=progressing("Savepointing", message),
        events=[Event("Normal", "UpgradeStarted", message)],
        requeue_after=5,
    )


def _fresh_savepoint(old: Deployment, state: UpgradeState) -> bool:
    """Suspended with a savepoint taken in this step, not one left over from an earlier suspend."""
    suspended = old.job_state in ("FINISHED", "SUSPENDED") or old.lifecycle == "SUSPENDED"
    fresh = old.savepoint_at is None or state.entered_at is None or old.savepoint_at >= state.entered_at
    return bool(old.upgrade_savepoint_path) and suspended and fresh


def decide_savepointing(
    state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime
) -> UpgradeDecision:
    old = seen.of(state.active)
    assert state.target is not None and state.active is not None
    if _fresh_savepoint(old, state):
        path = old.upgrade_savepoint_path
        nxt = enter_step(state, "Starting", now, spec.readiness_timeout, savepoint=path)
        message = f"starting {state.target} from {state.active}'s savepoint {path}"
        return UpgradeDecision(
            nxt,
            actions=[Apply(state.target, "running", initial_savepoint=path)],
            conditions=progressing("Starting", message),
            events=[Event("Normal", "SavepointTaken", f"{state.active}: savepoint {path}")],
            requeue_after=5,
        )
    if old.error or expired(state, now):
        why = (
            f"savepoint of {state.active} failed: {old.error}"
            if old.error
            else (f"no savepoint of {state.active} within {spec.savepoint_timeout}")
        )
        nxt = enter_step(state, "Idle", now, None, target=None, failed_version=state.target)
        return UpgradeDecision(
            nxt,
            actions=[Apply(state.active, "running")],  # it was never stopped, or resumes from its last state
            conditions=stalled("SavepointFailed", f"{why}; {state.target} was not started"),
            events=[Event("Warning", "SavepointFailed", why)],
        )
    return UpgradeDecision(
        state,
        actions=[Apply(state.active, "suspended")],
        conditions=progressing("Savepointing", f"waiting for {state.active}'s savepoint"),
        requeue_after=5,
    )


def decide_starting(state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime) -> UpgradeDecision:
    assert state.target is not None
    new = seen.of(state.target)
    results = gates(new, spec, seen.lag_growing)
    failed = [g for g in results if not g.passed]
    hard_failure = new.lifecycle == "FAILED" or new.restarts > spec.max_restarts or new.new_exceptions > 0
    healthy_since = (state.healthy_since or now) if not failed else None
    if healthy_since is not None and now - healthy_since >= spec.stable_for:
        previous = state.active
        nxt = enter_step(
            state,
            "Idle",
            now,
            None,
            active=state.target,
            target=None,
            failed_version=None,
            healthy_since=None,
            previous=state.active,
        )
        message = f"version {state.target} passed its readiness gates" + (
            f"; {previous} stays suspended for rollback" if previous else ""
        )
        return UpgradeDecision(
            nxt,
            actions=quiet(state.target, seen, spec),  # at rest from here: its gates are judged no more
            conditions=ready("Running", message),
            gates=results,
            events=[Event("Normal", "UpgradeSucceeded", message)],
        )
    if healthy_since is not None:
        held = UpgradeState(**{**state.__dict__, "healthy_since": healthy_since})
        message = (
            f"{state.target} passes its gates; watching it for {spec.stable_for} before calling it ready"
        )
        return UpgradeDecision(
            held,
            actions=[Apply(state.target, "running", initial_savepoint=state.savepoint)],
            conditions=progressing("Stabilizing", message),
            events=[Event("Normal", "Stabilizing", message)] if state.healthy_since is None else [],
            gates=results,
            requeue_after=1,
        )
    if hard_failure or expired(state, now):
        why = "; ".join(g.message for g in failed)
        if state.active is None:  # a first deploy has nothing to roll back to
            nxt = enter_step(state, "Idle", now, None, target=None, failed_version=state.target)
            return UpgradeDecision(
                nxt,
                conditions=stalled("ReadinessGatesFailed", why),
                gates=results,
                events=[Event("Warning", "ReadinessGatesFailed", why)],
            )
        nxt = enter_step(
            state, "RollingBack", now, spec.readiness_timeout, failed_version=state.target, healthy_since=None
        )
        message = f"{state.target} failed its gates ({why}); resuming {state.active} from {state.savepoint}"
        return UpgradeDecision(
            nxt,
            actions=[Delete(state.target), Apply(state.active, "running", initial_savepoint=state.savepoint)],
            conditions=progressing("RollingBack", message),
            events=[Event("Warning", "RollingBack", message)],
            gates=results,
            requeue_after=5,
        )
    waiting = f"waiting for {state.target}: " + "; ".join(g.message for g in failed)
    broken = (
        [Event("Normal", "StabilityBroken", f"{state.target} broke a gate while stabilizing, {waiting}")]
        if state.healthy_since is not None
        else []
    )
    return UpgradeDecision(
        UpgradeState(**{**state.__dict__, "healthy_since": None}),  # a break: stability starts over
        actions=[Apply(state.target, "running", initial_savepoint=state.savepoint)],
        conditions=progressing("Starting", waiting),
        events=broken,
        gates=results,
        requeue_after=5,
    )


def decide_rolling_back(
    state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime
) -> UpgradeDecision:
    assert state.active is not None
    old = seen.of(state.active)
    if old.job_state == RUNNING:
        nxt = enter_step(state, "RolledBack", now, None, target=None, overdue=False)
        message = (
            f"rolled back to {state.active} from savepoint {state.savepoint}; {state.failed_version} failed"
        )
        return UpgradeDecision(
            nxt,
            actions=quiet(state.active, seen, spec),
            conditions=[
                *stalled("RolledBack", message),
                ConditionUpdate("RolledBack", True, "ReadinessGatesFailed", message),
            ],
            events=[Event("Warning", "RolledBack", message)],
        )
    if expired(state, now):
        message = f"{state.active} did not resume from {state.savepoint} within {spec.readiness_timeout}"
        return UpgradeDecision(
            UpgradeState(**{**state.__dict__, "overdue": True}),
            conditions=stalled("RollbackStuck", message),
            events=[] if state.overdue else [Event("Warning", "RollbackStuck", message)],  # said once
            requeue_after=30,
        )
    return UpgradeDecision(
        state,
        actions=[Apply(state.active, "running", initial_savepoint=state.savepoint)],
        conditions=progressing("RollingBack", f"waiting for {state.active} to resume"),
        requeue_after=5,
    )


def decide_rolled_back(
    state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime
) -> UpgradeDecision:
    if spec.version not in (state.failed_version,):
        return decide_idle(enter_step(state, "Idle", now, None), seen, spec, now)
    message = f"rolled back to {state.active}; {state.failed_version} failed. Change spec.version to go on."
    return UpgradeDecision(
        state,
        actions=quiet(state.active, seen, spec),
        conditions=[
            *stalled("RolledBack", message),
            ConditionUpdate("RolledBack", True, "ReadinessGatesFailed", message),
        ],
    )


STEPS: dict[Step, Callable[[UpgradeState, Observed, UpgradeSpec, datetime], UpgradeDecision]] = {
    "Idle": decide_idle,
    "Savepointing": decide_savepointing,
    "Starting": decide_starting,
    "RollingBack": decide_rolling_back,
    "RolledBack": decide_rolled_back,
}

DEADLINES: dict[str, str] = {
    "Idle": "none at rest; a suspend has savepointTimeout (SuspendTimedOut), a resume or an adoption "
    "readinessTimeout (ResumeTimedOut)",
    "Savepointing": "savepointTimeout, then Idle with the old version resumed (SavepointFailed)",
    "Starting": "readinessTimeout, then RollingBack (or Idle, Stalled ReadinessGatesFailed, on a first "
    "deploy)",
    "RollingBack": "readinessTimeout, then Stalled RollbackStuck",
    "RolledBack": "none: at rest until spec.version changes",
}
"""What bounds each step, for the table test and the docs."""


def decide(state: UpgradeState, seen: Observed, spec: UpgradeSpec, now: datetime) -> UpgradeDecision:
    if spec.rollback_requested and state.step in ("Idle", "Starting"):
        return decide_manual_rollback(state, seen, spec, now)
    return STEPS[state.step](state, seen, spec, now)
