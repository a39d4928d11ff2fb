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
from datetime import UTC, datetime
from typing import Any

from kappa.api.base import duration
from kappa.api.conditions import ConditionUpdate, progressing, stalled
from kappa.api.streamjob import StreamJobSpec
from kappa.machines import canary, runtime_facts, upgrade
from kappa.machines.decision import Event
from kappa.machines.promotion import Live

ANALYSING = ("Deploying", "Analysing")
"""Canary steps during which the candidate runs beside the active version."""
REPLAY_ENDED = ("Failed", "Aborted", "RolledBack")
"""ReplayRun phases after which the active version stays."""
HISTORY = 64
"""Entries kept in status.history."""


def _ts(value: datetime | None) -> str | None:
    """metav1.Time on the wire (as controllers/status.ts)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


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
    decision: canary.CanaryDecision, seen: CanarySeen, earlier: dict[str, Any]
) -> dict[str, Any]:
    """status.canary after a canary decision; `earlier` is status.canary as it was."""
    baseline = seen.baseline or earlier.get("baseline")
    seen_state, seen_restarts, seen_update = seen.job_state, seen.restarts, seen.job_update_time
    if decision.state.version != earlier.get("version"):
        # Another candidate: nothing seen of the one before counts for it.
        baseline, seen_state, seen_restarts, seen_update = seen.baseline, None, 0, None
    return {
        "jobState": seen_state,
        "jobUpdateTime": seen_update,
        "restarts": seen_restarts,
        "baseline": baseline,
        "step": decision.state.step,
        "version": decision.state.version,
        "startedAt": _ts(decision.state.entered_at),
        "deadline": _ts(decision.state.deadline),
        "extensions": decision.state.extensions,
        "result": decision.state.result,
        # The judgement that ended an analysis stays visible after it, for that candidate.
        "gates": [{"name": g.name, "passed": g.passed, "message": g.message} for g in decision.gates]
        or (earlier.get("gates", []) if earlier.get("version") == decision.state.version else []),
    }


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
    patch: dict[str, Any] = {
        "phase": "Upgrading",
        "replay": {"run": run_name, "version": version, "phase": run_phase},
    }
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


def retire_with_run(patch: dict[str, Any], record: dict[str, Any]) -> None:
    """The version a replay replaced is kept for the run's rollback window, not the StreamJob's."""
    if record.get("rolledBack") or not record.get("retireAt"):
        return
    for entry in patch.get("deployments") or []:
        if entry["version"] == record.get("fromVersion") and entry.get("role") == "previous":
            entry["retireAt"] = record["retireAt"]


# --- savepoint upgrade ------------------------------------------------------------------------------------


def rollback_request(requested: str | None, handled: str | None) -> str | None:
    """The kappa.dev/rollback annotation's value, when it is a request not answered yet."""
    return requested if requested and requested != handled else None


def upgrade_spec(
    job: StreamJobSpec, live: Live, promoted: str | None, rollback_requested: bool
) -> upgrade.UpgradeSpec:
    return upgrade.UpgradeSpec(
        promoted or live.version,  # a canary promotes the version it analysed, never another one
        duration(job.upgrade.readiness_timeout),
        duration(job.upgrade.savepoint_timeout),
        job.upgrade.max_restarts,
        stable_for=duration(job.upgrade.stable_for),
        suspend=job.suspend,
        rollback_requested=rollback_requested,
        adopt=live.adopt,
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
    seen: dict[str, dict[str, Any]],
    old: list[dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """status.deployments: each version's role; a previous one keeps its retireAt (its rollback window).
    `seen` holds each version's deployment name and jobUpdateTime; `old` is status.deployments as it was."""
    window = duration(job.upgrade.rollback_window)
    before = {d["version"]: d for d in old}
    entries = []
    for version, view in sorted(views.items()):
        role = "active" if version == state.active else "target" if version == state.target else "previous"
        entry: dict[str, Any] = {
            "version": version,
            "deployment": seen[version]["deployment"],
            "role": role,
            "jobState": view.job_state,
            "lifecycleState": view.lifecycle,
            "restarts": view.restarts,
            "jobUpdateTime": seen[version].get("jobUpdateTime"),
        }
        if role == "previous":
            entry["retireAt"] = before.get(version, {}).get("retireAt") or _ts(now + window)
        entries.append({k: v for k, v in entry.items() if v is not None})
    return entries


def savepoints(
    job: StreamJobSpec,
    recorded: list[dict[str, Any]],
    before: upgrade.UpgradeState,
    after: upgrade.UpgradeState,
    now: datetime,
) -> list[dict[str, Any]]:
    """The upgrade's (or suspension's) savepoint joins status.savepoints once."""
    entries = list(recorded)
    if after.savepoint and after.savepoint not in {s["path"] for s in entries} and before.active:
        reason = "Suspend" if job.suspend and after.step == "Idle" else "Upgrade"
        entries.append(
            {"version": before.active, "path": after.savepoint, "takenAt": _ts(now), "reason": reason}
        )
    return entries


def history(
    recorded: list[dict[str, Any]], before: upgrade.UpgradeState, after: upgrade.UpgradeState, now: datetime
) -> list[dict[str, Any]]:
    entries = list(recorded)
    if after.active != before.active and after.active:
        entries.append({"version": after.active, "outcome": "Active", "at": _ts(now)})
        if before.active:
            entries.append({"version": before.active, "outcome": "Superseded", "at": _ts(now)})
    if rolled_back(before, after):
        entries.append({"version": after.failed_version, "outcome": "RolledBack", "at": _ts(now)})
    return entries[-HISTORY:]


def rolled_back(before: upgrade.UpgradeState, after: upgrade.UpgradeState) -> bool:
    """This decision completed a rollback (counted in kappa_streamjob_rollbacks_total)."""
    return after.step == "RolledBack" and before.step != "RolledBack" and bool(after.failed_version)


def upgrade_status(decision: upgrade.UpgradeDecision, recorded: dict[str, Any]) -> dict[str, Any]:
    """status.upgrade after a decision; `recorded` is status.upgrade as it was."""
    nxt = decision.state
    return {
        "step": nxt.step,
        "fromVersion": nxt.active,
        "toVersion": nxt.target,
        "startedAt": _ts(nxt.entered_at),
        "deadline": _ts(nxt.deadline),
        "savepoint": nxt.savepoint,
        "failedVersion": nxt.failed_version,
        "healthySince": _ts(nxt.healthy_since),
        "previousVersion": nxt.previous,
        "overdue": nxt.overdue or None,
        # The last judgement stays visible after the step that made it.
        "gates": [{"name": g.name, "passed": g.passed, "message": g.message[:1024]} for g in decision.gates]
        or recorded.get("gates", []),
    }


def version_status(
    job: StreamJobSpec,
    status: dict[str, Any],
    before: upgrade.UpgradeState,
    decision: upgrade.UpgradeDecision,
    views: dict[str, runtime_facts.Deployment],
    seen: dict[str, dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """The status fields a savepoint-upgrade decision sets (the lag and consumer group are the caller's)."""
    nxt = decision.state
    return {
        "phase": phase(nxt, job),
        "activeVersion": nxt.active,
        "stableVersion": nxt.active if nxt.step == "Idle" else status.get("stableVersion"),
        "deployments": deployments(job, nxt, views, seen, status.get("deployments") or [], now),
        "savepoints": savepoints(job, status.get("savepoints") or [], before, nxt, now),
        "history": history(status.get("history") or [], before, nxt, now),
        "upgrade": upgrade_status(decision, status.get("upgrade") or {}),
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
