"""Which machine drives a StreamJob on this look, and what the upgrade's decision leaves in its status. Pure.

    analyses: strategy canary, a new version while one is active ─▶ canary analysis (machines/canary.py)
        └─ promoted ─▶ on to the next line, with the version it analysed
    replays: strategy replay, a new version while one is active ─▶ a ReplayRun (machines/replay.py); the job
        adopts its deployment after the cutover (machines/promotion.py)
    anything else (first deploy, savepoint upgrade, rollback, suspension) ─▶ machines/savepoint_upgrade.py

Beside the choice: the canary's status entry, a rollback request, the output topic holding Ready back, the
deployments' roles and retireAt, history, phase, savepoints and the upgrade's status after a decision, and
Kafka's reachability condition.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kappa.api.base import duration
from kappa.api.conditions import ConditionUpdate, progressing, stalled
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import (
    CanaryStatus,
    GateResult,
    PromotionRecord,
    ReplayUpgradeStatus,
    SavepointRecord,
    StreamJobStatus,
    UpgradeStatus,
    VersionDeployment,
    VersionHistoryEntry,
)
from kappa.machines import canary, fko, runtime_facts, upgrade
from kappa.machines.decision import Event
from kappa.machines.promotion import Live

ANALYSING = ("Deploying", "Analysing")
"""Canary steps during which the candidate runs beside the active version."""
REPLAY_ENDED = ("Failed", "Aborted", "RolledBack")
"""ReplayRun phases after which the active version stays."""
HISTORY = 64
"""Entries kept in status.history."""


def _gates(gates: list[runtime_facts.Gate]) -> list[GateResult]:
    return [GateResult(name=g.name, passed=g.passed, message=g.message[:1024]) for g in gates]


# --- the choice -------------------------------------------------------------------------------------------


def upgrading(state: upgrade.UpgradeState) -> bool:
    return state.step not in ("Idle", "RolledBack")


def analyses(job: StreamJobSpec, state: upgrade.UpgradeState, canary_step: str | None) -> bool:
    """The canary machine decides first: a new version while one is active (strategy canary), or a canary
    under way. Once it promotes, the savepoint upgrade runs in the same look (`upgrade_spec`'s `promoted`)."""
    wants_canary = (
        job.upgrade.strategy == "canary"
        and not upgrading(state)
        and state.active is not None
        and job.version not in (state.active, state.failed_version)
    )
    # A promotion is over once the upgrade machine rests again: the canary goes back to Idle then.
    settling = canary_step == "Promoting" and not upgrading(state)
    return wants_canary or settling or canary_step in ANALYSING


def replays(job: StreamJobSpec, state: upgrade.UpgradeState, live: Live) -> bool:
    """strategy replay: a new version is replayed by a ReplayRun, while the active one serves."""
    return (
        job.upgrade.strategy == "replay"
        and state.step == "Idle"
        and state.active is not None
        and live.version != state.active
        and not live.adopt
        and not job.suspend
    )


# --- canary -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanarySeen:
    """What one reconcile saw of the candidate, to carry in status.canary."""

    job_state: str | None
    restarts: int
    baseline: dict[str, int] | None
    job_update_time: str | None


def canary_spec(job: StreamJobSpec, state: upgrade.UpgradeState) -> canary.CanarySpec:
    c = job.upgrade.canary
    return canary.CanarySpec(
        version=job.version,
        stable=state.active or job.version,
        duration=duration(c.duration),
        readiness_timeout=duration(job.upgrade.readiness_timeout),
        max_restarts=c.max_restarts,
        max_lag_records=c.max_lag_records,
        rate_min=c.output_rate_ratio.min or 0.0,
        rate_max=c.output_rate_ratio.max or float("inf"),
        no_data=c.no_data,
        failed=state.failed_version,
        upgrading=upgrading(state),
    )


def canary_status(
    decision: canary.CanaryDecision, seen: CanarySeen, earlier: CanaryStatus | None
) -> CanaryStatus:
    """status.canary after a canary decision; `earlier` is status.canary as it was."""
    before = earlier or CanaryStatus(step="Idle")
    baseline = seen.baseline or before.baseline
    seen_state, seen_restarts, seen_update = seen.job_state, seen.restarts, seen.job_update_time
    if decision.state.version != before.version:
        # Another candidate: nothing seen of the one before counts for it.
        baseline, seen_state, seen_restarts, seen_update = seen.baseline, None, 0, None
    gates = [GateResult(name=g.name, passed=g.passed, message=g.message) for g in decision.gates]
    return CanaryStatus(
        job_state=seen_state,
        job_update_time=seen_update,
        restarts=seen_restarts,
        baseline=baseline,
        step=decision.state.step,
        version=decision.state.version,
        started_at=decision.state.entered_at,
        deadline=decision.state.deadline,
        extensions=decision.state.extensions,
        result=decision.state.result,
        # The judgement that ended an analysis stays visible after it, for that candidate.
        gates=gates or (before.gates if before.version == decision.state.version else []),
    )


# --- replay -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayStep:
    """One look at a replay upgrade: the status, and whether the job's ReplayRun is still to be created."""

    patch: dict[str, Any]
    conditions: list[ConditionUpdate]
    events: list[Event]
    create_run: bool
    stalled: bool
    """The run ended without a cutover: said once per stall, not at every look."""


def replay_step(
    version: str, active: str | None, run_name: str, run_phase: str | None, found: bool
) -> ReplayStep:
    """`run_phase` is the phase of the job's ReplayRun for `version`, None before it has one."""
    replay = ReplayUpgradeStatus(run=run_name, version=version, phase=run_phase)
    patch: dict[str, Any] = {"phase": "Upgrading", "replay": replay.whole()}
    if run_phase in REPLAY_ENDED:
        message = f"ReplayRun {run_name} for {version} ended {run_phase}; {active} stays active"
        return ReplayStep({**patch, "phase": "Running"}, stalled("ReplayFailed", message), [], False, True)
    events: list[Event] = []
    if not found:
        message = f"replaying {version} with ReplayRun {run_name}; {active} serves until the cutover"
        events.append(Event("Normal", "ReplayUpgrade", message))
    message = f"ReplayRun {run_name} for {version} is {run_phase or 'Pending'}; {active} serves"
    # Intent first; the run's name is derived, so a repeat after a crash finds it instead of making two.
    return ReplayStep(patch, progressing("Replaying", message), events, not found, False)


def retire_with_run(entries: list[VersionDeployment], record: PromotionRecord) -> list[VersionDeployment]:
    """The version a replay replaced is kept for the run's rollback window, not the StreamJob's."""
    if record.rolled_back or not record.retire_at:
        return entries
    return [
        e.model_copy(update={"retire_at": record.retire_at})
        if e.version == record.from_version and e.role == "previous"
        else e
        for e in entries
    ]


# --- savepoint upgrade ------------------------------------------------------------------------------------


def rollback_request(requested: str | None, handled: str | None) -> str | None:
    """The kappa.dev/rollback annotation's value, when it is a request not answered yet."""
    return requested if requested and requested != handled else None


def upgrade_spec(
    job: StreamJobSpec,
    live: Live,
    promoted: str | None,
    rollback_requested: bool,
    *,
    asks_for_checkpoints: bool = False,
) -> upgrade.UpgradeSpec:
    """`asks_for_checkpoints`: the runtime (FKO) triggers the checkpoints the Checkpointed gate reads only
    when asked to (machines/fko.py); a version at rest stops asking, unless the user set an interval of
    their own."""
    return upgrade.UpgradeSpec(
        promoted or live.version,  # a canary promotes the version it analysed, never another one
        duration(job.upgrade.readiness_timeout),
        duration(job.upgrade.savepoint_timeout),
        job.upgrade.max_restarts,
        stable_for=duration(job.upgrade.stable_for),
        suspend=job.suspend,
        rollback_requested=rollback_requested,
        adopt=live.adopt,
        quiet_at_rest=asks_for_checkpoints
        and fko.own_checkpoint_interval(job.flink.flink_configuration) is None,
    )


def hold_for_topic(
    decision: upgrade.UpgradeDecision, topic_ok: bool, topic_why: str
) -> upgrade.UpgradeDecision:
    """Not Ready while the serving version's output topic is not: Stalled if it failed, else progressing."""
    if topic_ok or not any(c.type == "Ready" and c.status for c in decision.conditions):
        return decision
    failed = any(w in topic_why for w in ("Ready=False", "not served", "cannot be created"))
    held = stalled("OutputTopicFailed", topic_why) if failed else progressing("OutputNotReady", topic_why)
    return dataclasses.replace(decision, conditions=held)


def phase(state: upgrade.UpgradeState, job: StreamJobSpec) -> str:
    if state.step == "Idle" and job.suspend:
        return "Suspended"
    if state.step == "Idle" and state.failed_version == job.version:
        return "Failed"
    return {
        "Idle": "Running",
        "Savepointing": "Upgrading",
        "Starting": "Deploying" if not state.active else "Upgrading",
        "RollingBack": "RollingBack",
        "RolledBack": "Running",
    }[state.step]


def deployments(
    job: StreamJobSpec,
    state: upgrade.UpgradeState,
    views: dict[str, runtime_facts.Deployment],
    seen: dict[str, tuple[str, str | None]],
    old: list[VersionDeployment],
    now: datetime,
) -> list[VersionDeployment]:
    """status.deployments: each version's role; a previous one keeps its retireAt (its rollback window).
    `seen` holds each version's deployment name and jobUpdateTime; `old` is status.deployments as it was."""
    window = duration(job.upgrade.rollback_window)
    before = {d.version: d.retire_at for d in old}
    entries = []
    for version, view in sorted(views.items()):
        role = "active" if version == state.active else "target" if version == state.target else "previous"
        deployment, update_time = seen[version]
        entries.append(
            VersionDeployment(
                version=version,
                deployment=deployment,
                role=role,
                job_state=view.job_state,
                lifecycle_state=view.lifecycle,
                restarts=view.restarts,
                job_update_time=update_time,
                retire_at=(before.get(version) or now + window) if role == "previous" else None,
            )
        )
    return entries


def savepoints(
    job: StreamJobSpec,
    recorded: list[SavepointRecord],
    before: upgrade.UpgradeState,
    after: upgrade.UpgradeState,
    now: datetime,
) -> list[SavepointRecord]:
    """The upgrade's (or suspension's) savepoint joins status.savepoints once."""
    entries = list(recorded)
    if after.savepoint and after.savepoint not in {s.path for s in entries} and before.active:
        reason = "Suspend" if job.suspend and after.step == "Idle" else "Upgrade"
        entries.append(
            SavepointRecord(version=before.active, path=after.savepoint, taken_at=now, reason=reason)
        )
    return entries


def history(
    recorded: list[VersionHistoryEntry],
    before: upgrade.UpgradeState,
    after: upgrade.UpgradeState,
    now: datetime,
) -> list[VersionHistoryEntry]:
    entries = list(recorded)
    if after.active != before.active and after.active:
        entries.append(VersionHistoryEntry(version=after.active, outcome="Active", at=now))
        if before.active:
            entries.append(VersionHistoryEntry(version=before.active, outcome="Superseded", at=now))
    if rolled_back(before, after) and after.failed_version:
        entries.append(VersionHistoryEntry(version=after.failed_version, outcome="RolledBack", at=now))
    return entries[-HISTORY:]


def rolled_back(before: upgrade.UpgradeState, after: upgrade.UpgradeState) -> bool:
    """This decision completed a rollback (counted in kappa_streamjob_rollbacks_total)."""
    return after.step == "RolledBack" and before.step != "RolledBack" and bool(after.failed_version)


def upgrade_status(decision: upgrade.UpgradeDecision, recorded: UpgradeStatus | None) -> UpgradeStatus:
    """status.upgrade after a decision; `recorded` is status.upgrade as it was."""
    nxt = decision.state
    return UpgradeStatus(
        step=nxt.step,
        from_version=nxt.active,
        to_version=nxt.target,
        started_at=nxt.entered_at,
        deadline=nxt.deadline,
        savepoint=nxt.savepoint,
        failed_version=nxt.failed_version,
        healthy_since=nxt.healthy_since,
        previous_version=nxt.previous,
        overdue=nxt.overdue or None,
        # The last judgement stays visible after the step that made it.
        gates=_gates(decision.gates) or (recorded.gates if recorded else []),
    )


def version_status(
    job: StreamJobSpec,
    status: StreamJobStatus,
    before: upgrade.UpgradeState,
    decision: upgrade.UpgradeDecision,
    views: dict[str, runtime_facts.Deployment],
    seen: dict[str, tuple[str, str | None]],
    now: datetime,
    promotion: PromotionRecord | None = None,
) -> dict[str, Any]:
    """The status fields a savepoint-upgrade decision sets, as written (the lag, consumer group and
    savepoints, bounded by machines/retention.py, are the caller's). `seen` holds each version's deployment
    name and jobUpdateTime; `promotion` is the replay record kept in status.promotion, whose window a
    version it replaced keeps."""
    nxt = decision.state
    entries = deployments(job, nxt, views, seen, status.deployments, now)
    if promotion:
        entries = retire_with_run(entries, promotion)
    return {
        "phase": phase(nxt, job),
        "activeVersion": nxt.active,
        "stableVersion": nxt.active if nxt.step == "Idle" else status.stable_version,
        "deployments": [d.wire() for d in entries],
        "history": [h.wire() for h in history(status.history, before, nxt, now)],
        "upgrade": upgrade_status(decision, status.upgrade).whole(),
    }


# --- Kafka ------------------------------------------------------------------------------------------------


def kafka_reachability(
    down: str | None, answering: bool, bootstrap: str
) -> tuple[list[ConditionUpdate], list[Event]]:
    """KafkaReachable: False with one message per outage (so its Warning is one event series), True once the
    lag poll hears it answer; nothing before the poll knows either way."""
    if down:
        return [ConditionUpdate("KafkaReachable", False, "KafkaUnreachable", down)], [
            Event("Warning", "KafkaUnreachable", down)
        ]
    if answering:
        answers = f"Kafka at {bootstrap} answers"
        return [ConditionUpdate("KafkaReachable", True, "KafkaAnswers", answers)], []
    return [], []
