"""The StreamJob savepoint upgrade, with automatic rollback: a pure state machine.

    Idle ─version change─▶ Savepointing ─savepoint recorded─▶ Starting ─gates pass─▶ Idle (new active)
                             │ failed / deadline                 │ gates fail / deadline
                             ▼                                   ▼
                           Idle (old resumed, Stalled)        RollingBack ─old running─▶ RolledBack

A first deploy goes Idle → Starting directly. Every step has a deadline; intent (the step and its target) is
in the status patch of the same decision that asks for the side effect, and every action is idempotent, so a
crash between the two repeats nothing that matters and skips nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from kappa.api.conditions import ConditionUpdate, progressing, ready, stalled
from kappa.machines.decision import Event

Step = Literal["Idle", "Savepointing", "Starting", "RollingBack", "RolledBack"]
RUNNING = "RUNNING"
FAILED_STATES = {"FAILED", "FAILING", "RESTARTING"}


@dataclass(frozen=True)
class Deployment:
    """What was observed of one version's FlinkDeployment (FKO status)."""

    exists: bool = True
    desired_state: Literal["running", "suspended"] = "running"
    job_state: str | None = None
    lifecycle: str | None = None
    upgrade_savepoint_path: str | None = None
    savepoint_at: datetime | None = None
    last_checkpoint_at: datetime | None = None
    started_at: datetime | None = None
    restarts: int = 0
    error: str | None = None
    new_exceptions: int = 0


@dataclass(frozen=True)
class Observed:
    deployments: dict[str, Deployment]
    lag_growing: bool = False

    def of(self, version: str | None) -> Deployment:
        return self.deployments.get(version or "", Deployment(exists=False))


@dataclass(frozen=True)
class UpgradeSpec:
    version: str
    readiness_timeout: timedelta
    savepoint_timeout: timedelta
    max_restarts: int
    stable_for: timedelta = timedelta(0)
    """How long every gate must hold without a break: one healthy moment between crashes is not ready."""
    suspend: bool = False
    rollback_requested: bool = False
    """A new kappa.dev/rollback request: go back to the previous version."""
    adopt: bool = False
    """`version` is already deployed by a ReplayRun that cut over to it (or back from it): switch to it as it
    is, with no savepoint upgrade, and keep the version it replaces suspended."""


@dataclass(frozen=True)
class UpgradeState:
    """The part of StreamJob status this machine owns."""

    step: Step = "Idle"
    active: str | None = None
    target: str | None = None
    entered_at: datetime | None = None
    deadline: datetime | None = None
    savepoint: str | None = None
    """The savepoint the target starts from, and the one a rollback resumes the active version from."""
    failed_version: str | None = None
    """A version that failed its gates; not retried until spec.version changes to another version."""
    healthy_since: datetime | None = None
    """Since when every gate of the target has held, without a break."""
    previous: str | None = None
    """The version before the active one, kept suspended at `savepoint` for its rollback window."""
    overdue: bool = False
    """Said once, still asked for: at rest in Idle, a suspend, resume or adoption passed its deadline, or the
    suspend's savepoint failed; in RollingBack, the rolled-back-to version did not resume in time."""


@dataclass(frozen=True)
class Apply:
    """Server-side apply a version's FlinkDeployment in this state."""

    version: str
    state: Literal["running", "suspended"]
    initial_savepoint: str | None = None

    @property
    def key(self) -> str:
        return f"apply/{self.version}/{self.state}/{self.initial_savepoint or '-'}"


@dataclass(frozen=True)
class Delete:
    version: str

    @property
    def key(self) -> str:
        return f"delete/{self.version}"


Action = Apply | Delete


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    message: str


@dataclass(frozen=True)
class UpgradeDecision:
    state: UpgradeState
    actions: list[Action] = field(default_factory=list)
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    requeue_after: float | None = None


def gates(dep: Deployment, spec: UpgradeSpec, lag_growing: bool) -> list[Gate]:
    """Healthy, not just RUNNING: a checkpoint since start, few restarts, no new exceptions, steady lag."""
    checkpointed = (
        dep.last_checkpoint_at is not None
        and dep.started_at is not None
        and dep.last_checkpoint_at > dep.started_at
    )
    return [
        Gate("Running", dep.job_state == RUNNING, f"job is {dep.job_state or 'not started'}"),
        Gate(
            "Checkpointed",
            checkpointed,
            "a checkpoint completed after the start"
            if checkpointed
            else "no checkpoint completed since the start",
        ),
        Gate(
            "Restarts",
            dep.restarts <= spec.max_restarts,
            f"{dep.restarts} restart(s), at most {spec.max_restarts}",
        ),
        Gate("NoNewExceptions", dep.new_exceptions == 0, f"{dep.new_exceptions} new exception(s)"),
        Gate("LagNotGrowing", not lag_growing, "lag is growing" if lag_growing else "lag is not growing"),
    ]


def _enter(
    state: UpgradeState, step: Step, now: datetime, timeout: timedelta | None, **changes: object
) -> UpgradeState:
    deadline = now + timeout if timeout is not None else None
    return UpgradeState(
        **{**state.__dict__, "step": step, "entered_at": now, "deadline": deadline, **changes}
    )


def _expired(state: UpgradeState, now: datetime) -> bool:
    return state.deadline is not None and now >= state.deadline


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
    return UpgradeDecision(_at_rest(state), conditions=ready("Running", message), events=said)


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
    nxt = _enter(
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
            conditions=stalled(
                "UpgradeFailed",
                f"version {spec.version} failed its upgrade; {state.active} stays active. "
                "Change spec.version to retry or to go back.",
            ),
        )
    if state.active is None:
        nxt = _enter(state, "Starting", now, spec.readiness_timeout, target=spec.version, savepoint=None)
        return UpgradeDecision(
            nxt,
            actions=[Apply(spec.version, "running")],
            conditions=progressing("Deploying", f"deploying version {spec.version}"),
            events=[Event("Normal", "Deploying", f"deploying version {spec.version}")],
            requeue_after=5,
        )
    nxt = _enter(state, "Savepointing", now, spec.savepoint_timeout, target=spec.version, savepoint=None)
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
        nxt = _enter(state, "Starting", now, spec.readiness_timeout, savepoint=path)
        message = f"starting {state.target} from {state.active}'s savepoint {path}"
        return UpgradeDecision(
            nxt,
            actions=[Apply(state.target, "running", initial_savepoint=path)],
            conditions=progressing("Starting", message),
            events=[Event("Normal", "SavepointTaken", f"{state.active}: savepoint {path}")],
            requeue_after=5,
        )
    if old.error or _expired(state, now):
        why = (
            f"savepoint of {state.active} failed: {old.error}"
            if old.error
            else (f"no savepoint of {state.active} within {spec.savepoint_timeout}")
        )
        nxt = _enter(state, "Idle", now, None, target=None, failed_version=state.target)
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
        nxt = _enter(
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
    if hard_failure or _expired(state, now):
        why = "; ".join(g.message for g in failed)
        if state.active is None:  # a first deploy has nothing to roll back to
            nxt = _enter(state, "Idle", now, None, target=None, failed_version=state.target)
            return UpgradeDecision(
                nxt,
                conditions=stalled("ReadinessGatesFailed", why),
                gates=results,
                events=[Event("Warning", "ReadinessGatesFailed", why)],
            )
        nxt = _enter(
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
        nxt = _enter(state, "RolledBack", now, None, target=None, overdue=False)
        message = (
            f"rolled back to {state.active} from savepoint {state.savepoint}; {state.failed_version} failed"
        )
        return UpgradeDecision(
            nxt,
            conditions=[
                *stalled("RolledBack", message),
                ConditionUpdate("RolledBack", True, "ReadinessGatesFailed", message),
            ],
            events=[Event("Warning", "RolledBack", message)],
        )
    if _expired(state, now):
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
        return decide_idle(_enter(state, "Idle", now, None), seen, spec, now)
    message = f"rolled back to {state.active}; {state.failed_version} failed. Change spec.version to go on."
    return UpgradeDecision(
        state,
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


def output_versions(
    recorded: dict[str, str], before_active: str | None, active: str | None, target: str | None
) -> dict[str, str]:
    """Which version's output each version writes. A savepoint upgrade (or a canary's promotion) continues
    its predecessor's output, so readers of it see one continuous result; a first deploy and a version
    adopted from a replay start their own. Recorded once per version, before it is deployed."""
    lineage = dict(recorded)
    if target and target not in lineage:
        lineage[target] = lineage.get(before_active, before_active) if before_active else target
    if active and active not in lineage:
        lineage[active] = active
    return lineage
