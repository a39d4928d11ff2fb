"""The StreamJob canary: run the candidate beside stable, analyse it, then promote or abort. Pure.

    Idle ─version change─▶ Deploying ─running─▶ Analysing ─duration over, gates pass─▶ Promoting (→ upgrade)
      ▲                       │ deadline            │ gate fails / no data (Fail) / deadline      │
      │                       ▼                     ▼                                             │
      │                    Aborted ◀──────────── Aborted (canary removed, stable untouched)      │
      └──────────── the upgrade is over (promoted, or rolled back) ◀─────────────────────────────┘

The candidate is its own FlinkDeployment (`{job}-{version}-canary`) with its own consumer group starting at
latest and a shadow output, so stable is never touched until promotion, which is a savepoint upgrade of the
version that was analysed, never of another one. A version change while deploying or analysing removes the
candidate and starts over with the new version (or stops, when spec went back to stable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from kappa.api.conditions import ConditionUpdate, progressing, stalled
from kappa.api.streamjob_status import CanaryStatus, StreamJobStatus
from kappa.machines.decision import Decision, Event
from kappa.machines.runtime_facts import RUNNING, Deployment, Gate

Step = Literal["Idle", "Deploying", "Analysing", "Promoting", "Aborted"]
NoData = Literal["Fail", "Pass", "Extend"]


@dataclass(frozen=True)
class CanarySpec:
    version: str
    stable: str
    duration: timedelta
    readiness_timeout: timedelta
    max_restarts: int
    max_lag_records: int
    rate_min: float
    rate_max: float
    no_data: NoData
    max_extensions: int = 1
    failed: str | None = None
    """A version the upgrade machine rolled back or refused: not a candidate until spec.version moves on."""
    upgrading: bool = False
    """The upgrade machine is busy (savepointing, starting, rolling back): a promotion is still under way."""


@dataclass(frozen=True)
class CanaryObserved:
    canary: Deployment
    canary_lag: int | None
    canary_rate: float | None
    """Output records per second of the candidate over the analysis so far; None when unknown."""
    stable_rate: float | None
    input_records: int
    """Records that arrived on the input during the analysis: zero means there was nothing to compare."""


@dataclass(frozen=True)
class CanaryState:
    step: Step = "Idle"
    version: str | None = None
    entered_at: datetime | None = None
    deadline: datetime | None = None
    extensions: int = 0
    result: Literal["Promoted", "Aborted"] | None = None


@dataclass(frozen=True)
class DeployCanary:
    version: str


@dataclass(frozen=True)
class RemoveCanary:
    version: str


CanaryAction = DeployCanary | RemoveCanary


CanaryDecision = Decision[CanaryState, CanaryAction]
"""What the canary machine returns (machines/decision.py)."""


def promotes(before: CanaryState, decision: CanaryDecision) -> bool:
    """The decision enters Promoting: the caller hands the analysed version to the savepoint upgrade, in
    this look only (a promotion under way stays Promoting while the upgrade machine carries it)."""
    return decision.state.step == "Promoting" and before.step != "Promoting"


def from_status(status: StreamJobStatus) -> CanaryState:
    """The canary machine's state, as status.canary recorded it."""
    c = status.canary or CanaryStatus(step="Idle")
    return CanaryState(
        step=c.step,  # type: ignore[arg-type]
        version=c.version,
        entered_at=c.started_at,
        deadline=c.deadline,
        extensions=c.extensions,
        result=c.result,  # type: ignore[arg-type]
    )


def analysis_gates(seen: CanaryObserved, spec: CanarySpec) -> list[Gate]:
    c = seen.canary
    results = [
        Gate("Running", c.job_state == RUNNING, f"candidate is {c.job_state or 'not started'}"),
        Gate(
            "Restarts",
            c.restarts <= spec.max_restarts,
            f"{c.restarts} restart(s), at most {spec.max_restarts}",
        ),
        Gate("NoExceptions", c.new_exceptions == 0 and not c.error, f"{c.new_exceptions} exception(s)"),
        Gate(
            "Lag",
            seen.canary_lag is not None and seen.canary_lag <= spec.max_lag_records,
            f"lag {seen.canary_lag}, at most {spec.max_lag_records}",
        ),
    ]
    if seen.canary_rate is None or not seen.stable_rate:
        results.append(Gate("OutputRate", False, "no output rate of stable to compare with"))
    else:
        ratio = seen.canary_rate / seen.stable_rate
        results.append(
            Gate(
                "OutputRate",
                spec.rate_min <= ratio <= spec.rate_max,
                f"output rate ratio {ratio:.2f}, bounds [{spec.rate_min}, {spec.rate_max}]",
            )
        )
    return results


def _enter(
    state: CanaryState, step: Step, now: datetime, timeout: timedelta | None, **changes: object
) -> CanaryState:
    deadline = now + timeout if timeout is not None else None
    return CanaryState(**{**state.__dict__, "step": step, "entered_at": now, "deadline": deadline, **changes})


def _abort(
    state: CanaryState, now: datetime, reason: str, message: str, results: list[Gate]
) -> CanaryDecision:
    assert state.version is not None
    return CanaryDecision(
        _enter(state, "Aborted", now, None, result="Aborted"),
        actions=[RemoveCanary(state.version)],
        conditions=[*stalled(reason, message), ConditionUpdate("CanaryAborted", True, reason, message)],
        events=[Event("Warning", "CanaryAborted", message)],
        gates=results,
    )


def decide_idle(state: CanaryState, seen: CanaryObserved, spec: CanarySpec, now: datetime) -> CanaryDecision:
    if spec.version in (spec.stable, spec.failed) or spec.upgrading:
        return CanaryDecision(state)
    message = f"deploying canary {spec.version} beside stable {spec.stable}"
    return CanaryDecision(
        _enter(
            state, "Deploying", now, spec.readiness_timeout, version=spec.version, extensions=0, result=None
        ),
        actions=[DeployCanary(spec.version)],
        conditions=progressing("CanaryDeploying", message),
        events=[Event("Normal", "CanaryStarted", message)],
        requeue_after=5,
    )


def decide_superseded(
    state: CanaryState, seen: CanaryObserved, spec: CanarySpec, now: datetime
) -> CanaryDecision:
    """spec.version moved while a candidate was deployed or analysed: what was analysed is not what spec
    asks for, so that candidate goes, and a new one is analysed from the start (none when spec is back on
    stable)."""
    assert state.version is not None
    idle = _enter(state, "Idle", now, None, version=None, extensions=0, result=None)
    restart = decide_idle(idle, seen, spec, now)
    message = f"spec.version moved from {state.version} to {spec.version} during its canary: " + (
        "analysing the new version from the start" if restart.state.step == "Deploying" else "canary stopped"
    )
    return CanaryDecision(
        restart.state,
        actions=[RemoveCanary(state.version), *restart.actions],
        conditions=restart.conditions or progressing("CanarySuperseded", message),
        events=[Event("Normal", "CanarySuperseded", message)],
        requeue_after=5,
    )


def decide_deploying(
    state: CanaryState, seen: CanaryObserved, spec: CanarySpec, now: datetime
) -> CanaryDecision:
    assert state.version is not None
    if spec.version != state.version:
        return decide_superseded(state, seen, spec, now)
    if seen.canary.job_state == RUNNING:
        message = f"analysing canary {state.version} for {spec.duration}"
        return CanaryDecision(
            _enter(state, "Analysing", now, spec.duration),
            conditions=progressing("CanaryAnalysing", message),
            events=[Event("Normal", "CanaryAnalysing", message)],
            requeue_after=5,
        )
    if seen.canary.lifecycle == "FAILED" or now >= (state.deadline or now):
        message = f"canary {state.version} did not start: {seen.canary.error or 'deadline passed'}"
        return _abort(state, now, "CanaryFailedToStart", message, [])
    return CanaryDecision(
        state,
        actions=[DeployCanary(state.version)],
        conditions=progressing("CanaryDeploying", f"waiting for canary {state.version}"),
        requeue_after=5,
    )


def decide_analysing(
    state: CanaryState, seen: CanaryObserved, spec: CanarySpec, now: datetime
) -> CanaryDecision:
    assert state.version is not None
    if spec.version != state.version:
        return decide_superseded(state, seen, spec, now)
    results = analysis_gates(seen, spec)
    by_name = {g.name: g for g in results}
    # Failures that cannot heal abort at once; the rest are judged when the analysis ends.
    for name in ("Restarts", "NoExceptions"):
        if not by_name[name].passed:
            return _abort(
                state, now, "CanaryGateFailed", f"canary {state.version}: {by_name[name].message}", results
            )
    if state.deadline is not None and now < state.deadline:
        return CanaryDecision(
            state,
            conditions=progressing("CanaryAnalysing", f"analysing canary {state.version}"),
            gates=results,
            requeue_after=5,
        )
    if seen.input_records == 0:
        if spec.no_data == "Extend" and state.extensions < spec.max_extensions:
            message = f"no input during the analysis of {state.version}: extending by {spec.duration}"
            return CanaryDecision(
                _enter(state, "Analysing", now, spec.duration, extensions=state.extensions + 1),
                conditions=progressing("CanaryAnalysisExtended", message),
                events=[Event("Normal", "CanaryAnalysisExtended", message)],
                gates=results,
                requeue_after=5,
            )
        if spec.no_data != "Pass":
            return _abort(
                state, now, "CanaryNoData", f"no input during the analysis of {state.version}", results
            )
        results = [g for g in results if g.name != "OutputRate"]
    failed = [g for g in results if not g.passed]
    if failed:
        return _abort(
            state,
            now,
            "CanaryGateFailed",
            f"canary {state.version}: " + "; ".join(g.message for g in failed),
            results,
        )
    message = f"canary {state.version} passed its analysis: promoting by savepoint upgrade"
    return CanaryDecision(
        _enter(state, "Promoting", now, None, result="Promoted"),
        actions=[RemoveCanary(state.version)],
        conditions=progressing("CanaryPromoting", message),
        events=[Event("Normal", "CanaryPromoted", message)],
        gates=results,
    )


def decide_promoting(
    state: CanaryState, seen: CanaryObserved, spec: CanarySpec, now: datetime
) -> CanaryDecision:
    """The upgrade machine carries the promotion, under its own deadlines. Once it is over (the version is
    stable, or it was rolled back) the canary is idle again, ready for the next version change."""
    if spec.upgrading:
        return CanaryDecision(state)
    after = decide_idle(_enter(state, "Idle", now, None), seen, spec, now)
    if state.version is None:
        return after
    # The candidate is removed again (idempotent): the promotion's own removal is lost when the operator dies
    # between writing Promoting and acting on it, and nothing else would ever remove it.
    return replace(after, actions=[RemoveCanary(state.version), *after.actions])


def decide_aborted(
    state: CanaryState, seen: CanaryObserved, spec: CanarySpec, now: datetime
) -> CanaryDecision:
    """An aborted candidate waits for a new version."""
    if spec.version not in (state.version, spec.stable):
        return decide_idle(_enter(state, "Idle", now, None), seen, spec, now)
    return CanaryDecision(state)


STEPS: dict[Step, Callable[[CanaryState, CanaryObserved, CanarySpec, datetime], CanaryDecision]] = {
    "Idle": decide_idle,
    "Deploying": decide_deploying,
    "Analysing": decide_analysing,
    "Promoting": decide_promoting,
    "Aborted": decide_aborted,
}

DEADLINES: dict[Step, str] = {
    "Idle": "none: at rest",
    "Deploying": "spec.upgrade.readinessTimeout, then Aborted (CanaryFailedToStart)",
    "Analysing": "spec.upgrade.canary.duration (extended at most max_extensions times), then promoted or "
    "Aborted",
    "Promoting": "the upgrade machine's own deadlines (savepointTimeout, readinessTimeout)",
    "Aborted": "none: at rest until spec.version changes",
}
"""What bounds each step, for the table test and the docs: every working step has a deadline."""


def decide(state: CanaryState, seen: CanaryObserved, spec: CanarySpec, now: datetime) -> CanaryDecision:
    return STEPS[state.step](state, seen, spec, now)
