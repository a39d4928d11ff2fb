"""The savepoint upgrade machine, table-driven: every transition and every deadline."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from kappa.machines.runtime_facts import Deployment
from kappa.machines.savepoint_upgrade import decide
from kappa.machines.upgrade import (
    Apply,
    Delete,
    Observed,
    UpgradeSpec,
    UpgradeState,
    output_versions,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SPEC_V2 = UpgradeSpec(
    "v2", readiness_timeout=timedelta(minutes=5), savepoint_timeout=timedelta(minutes=2), max_restarts=3
)
SP = "file:///sp/v1-1"


def spec(version: str) -> UpgradeSpec:
    return UpgradeSpec(version, SPEC_V2.readiness_timeout, SPEC_V2.savepoint_timeout, SPEC_V2.max_restarts)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


HEALTHY = Deployment(job_state="RUNNING", lifecycle="STABLE", started_at=at(0.5), last_checkpoint_at=at(1))
NEVER_CHECKPOINTS = Deployment(job_state="RUNNING", lifecycle="DEPLOYED", started_at=at(0.5))
CRASH_LOOP = Deployment(job_state="RESTARTING", started_at=at(0.5), restarts=4)
SUSPENDED_V1 = Deployment(
    desired_state="suspended",
    job_state="FINISHED",
    lifecycle="SUSPENDED",
    upgrade_savepoint_path=SP,
    savepoint_at=at(0.5),
)
IDLE_V1 = UpgradeState("Idle", active="v1")
SAVEPOINTING = UpgradeState("Savepointing", active="v1", target="v2", entered_at=T0, deadline=at(2))
STARTING = UpgradeState("Starting", active="v1", target="v2", entered_at=T0, deadline=at(5), savepoint=SP)
FIRST = UpgradeState("Starting", active=None, target="v1", entered_at=T0, deadline=at(5))
ROLLING_BACK = UpgradeState(
    "RollingBack", active="v1", entered_at=T0, deadline=at(5), savepoint=SP, failed_version="v2"
)
ROLLED_BACK = UpgradeState("RolledBack", active="v1", entered_at=T0, savepoint=SP, failed_version="v2")


def seen(**deployments: Deployment) -> Observed:
    return Observed(deployments=deployments)


CASES = [
    # name, state, observed, spec, now, next step, actions, stalled reason (None: not stalled)
    ("steady", IDLE_V1, seen(v1=HEALTHY), spec("v1"), at(0), "Idle", [], None),
    ("first deploy", UpgradeState(), seen(), spec("v1"), at(0), "Starting", [Apply("v1", "running")], None),
    (
        "version change suspends old with savepoint",
        IDLE_V1,
        seen(v1=HEALTHY),
        SPEC_V2,
        at(0),
        "Savepointing",
        [Apply("v1", "suspended")],
        None,
    ),
    (
        "failed version not retried",
        UpgradeState("Idle", active="v1", failed_version="v2"),
        seen(v1=HEALTHY),
        SPEC_V2,
        at(0),
        "Idle",
        [],
        "UpgradeFailed",
    ),
    (
        "savepoint recorded starts new from it",
        SAVEPOINTING,
        seen(v1=SUSPENDED_V1),
        SPEC_V2,
        at(1),
        "Starting",
        [Apply("v2", "running", initial_savepoint=SP)],
        None,
    ),
    (
        "stale savepoint is not taken",
        SAVEPOINTING,
        seen(v1=Deployment(job_state="FINISHED", upgrade_savepoint_path="file:///old", savepoint_at=at(-60))),
        SPEC_V2,
        at(1),
        "Savepointing",
        [Apply("v1", "suspended")],
        None,
    ),
    (
        "waiting for savepoint",
        SAVEPOINTING,
        seen(v1=HEALTHY),
        SPEC_V2,
        at(1),
        "Savepointing",
        [Apply("v1", "suspended")],
        None,
    ),
    (
        "savepoint failure resumes old",
        SAVEPOINTING,
        seen(v1=Deployment(job_state="RUNNING", error="boom")),
        SPEC_V2,
        at(1),
        "Idle",
        [Apply("v1", "running")],
        "SavepointFailed",
    ),
    (
        "savepoint deadline resumes old",
        SAVEPOINTING,
        seen(v1=HEALTHY),
        SPEC_V2,
        at(2),
        "Idle",
        [Apply("v1", "running")],
        "SavepointFailed",
    ),
    ("gates pass", STARTING, seen(v1=SUSPENDED_V1, v2=HEALTHY), SPEC_V2, at(2), "Idle", [], None),
    (
        "running but no checkpoint yet: wait",
        STARTING,
        seen(v2=NEVER_CHECKPOINTS),
        SPEC_V2,
        at(2),
        "Starting",
        [Apply("v2", "running", initial_savepoint=SP)],
        None,
    ),
    (
        "never checkpoints: rollback at the deadline",
        STARTING,
        seen(v2=NEVER_CHECKPOINTS),
        SPEC_V2,
        at(5),
        "RollingBack",
        [Delete("v2"), Apply("v1", "running", initial_savepoint=SP)],
        None,
    ),
    (
        "crash loop: rollback at once",
        STARTING,
        seen(v2=CRASH_LOOP),
        SPEC_V2,
        at(1),
        "RollingBack",
        [Delete("v2"), Apply("v1", "running", initial_savepoint=SP)],
        None,
    ),
    (
        "new exceptions: rollback",
        STARTING,
        seen(
            v2=Deployment(job_state="RUNNING", started_at=at(0.5), last_checkpoint_at=at(1), new_exceptions=2)
        ),
        SPEC_V2,
        at(1),
        "RollingBack",
        [Delete("v2"), Apply("v1", "running", initial_savepoint=SP)],
        None,
    ),
    (
        "deploy failed: rollback",
        STARTING,
        seen(v2=Deployment(lifecycle="FAILED", error="image")),
        SPEC_V2,
        at(1),
        "RollingBack",
        [Delete("v2"), Apply("v1", "running", initial_savepoint=SP)],
        None,
    ),
    (
        "first deploy fails its gates: stall",
        FIRST,
        seen(v1=NEVER_CHECKPOINTS),
        spec("v1"),
        at(5),
        "Idle",
        [],
        "ReadinessGatesFailed",
    ),
    (
        "old resumed: rolled back",
        ROLLING_BACK,
        seen(v1=HEALTHY),
        SPEC_V2,
        at(1),
        "RolledBack",
        [],
        "RolledBack",
    ),
    (
        "waiting for old to resume",
        ROLLING_BACK,
        seen(v1=Deployment(job_state="CREATED")),
        SPEC_V2,
        at(1),
        "RollingBack",
        [Apply("v1", "running", initial_savepoint=SP)],
        None,
    ),
    (
        "rollback deadline: stuck",
        ROLLING_BACK,
        seen(v1=Deployment(job_state="CREATED")),
        SPEC_V2,
        at(5),
        "RollingBack",
        [],
        "RollbackStuck",
    ),
    (
        "rolled back stays until spec changes",
        ROLLED_BACK,
        seen(v1=HEALTHY),
        SPEC_V2,
        at(9),
        "RolledBack",
        [],
        "RolledBack",
    ),
    ("spec back to v1 after rollback", ROLLED_BACK, seen(v1=HEALTHY), spec("v1"), at(9), "Idle", [], None),
    (
        "a new version after rollback upgrades again",
        ROLLED_BACK,
        seen(v1=HEALTHY),
        spec("v3"),
        at(9),
        "Savepointing",
        [Apply("v1", "suspended")],
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "observed", "spec_", "now", "step", "actions", "stalled_reason"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_transitions(
    name: str,
    state: UpgradeState,
    observed: Observed,
    spec_: UpgradeSpec,
    now: datetime,
    step: str,
    actions: list,
    stalled_reason: str | None,
) -> None:
    decision = decide(state, observed, spec_, now)
    assert decision.state.step == step
    assert decision.actions == actions
    conditions = {c.type: c for c in decision.conditions}
    if stalled_reason:
        assert conditions["Stalled"].status is True
        assert conditions["Stalled"].reason == stalled_reason
    else:
        assert conditions["Stalled"].status is False
    if decision.state.step in ("Savepointing", "Starting", "RollingBack"):
        assert decision.state.deadline is not None, "every working step has a deadline"


def test_deadlines_come_from_the_spec() -> None:
    assert decide(IDLE_V1, seen(v1=HEALTHY), SPEC_V2, T0).state.deadline == T0 + SPEC_V2.savepoint_timeout
    started = decide(SAVEPOINTING, seen(v1=SUSPENDED_V1), SPEC_V2, at(1)).state
    assert started.deadline == at(1) + SPEC_V2.readiness_timeout
    assert started.savepoint == SP  # intent recorded with the action that uses it


def test_success_makes_the_new_version_active_and_clears_failures() -> None:
    done = decide(STARTING, seen(v2=HEALTHY), SPEC_V2, at(2))
    assert (done.state.active, done.state.target, done.state.failed_version) == ("v2", None, None)
    assert {c.type: c.status for c in done.conditions}["Ready"] is True
    assert [g.name for g in done.gates if g.passed] == [
        "Running",
        "Checkpointed",
        "Restarts",
        "NoNewExceptions",
        "LagNotGrowing",
    ]


def test_rollback_ends_with_rolled_back_ready_false_and_stalled() -> None:
    done = decide(ROLLING_BACK, seen(v1=HEALTHY), SPEC_V2, at(1))
    conditions = {c.type: c for c in done.conditions}
    assert conditions["RolledBack"].status is True
    assert conditions["Ready"].status is False
    assert conditions["Stalled"].status is True
    assert "v2 failed" in conditions["Stalled"].message
    assert done.events[0].type == "Warning"


@pytest.mark.parametrize(
    ("name", "state", "observed", "spec_", "now"), [c[:5] for c in CASES], ids=[c[0] for c in CASES]
)
def test_deciding_again_after_a_crash_asks_for_the_same_idempotent_actions(
    name: str, state: UpgradeState, observed: Observed, spec_: UpgradeSpec, now: datetime
) -> None:
    """A crash after the status write but before the actions: the next reconcile, from the stored state and a
    world in which the actions may or may not have happened, must not ask for anything new or conflicting."""
    first = decide(state, observed, spec_, now)
    again = decide(state, observed, spec_, now)
    assert first == again
    assert len(set(first.actions)) == len(first.actions)  # none asked twice


STABLE_30S = UpgradeSpec("v2", SPEC_V2.readiness_timeout, SPEC_V2.savepoint_timeout, 3, timedelta(seconds=30))


def test_one_healthy_moment_is_not_ready_the_gates_must_hold() -> None:
    first = decide(STARTING, seen(v2=HEALTHY), STABLE_30S, at(2))
    assert first.state.step == "Starting"
    assert first.state.healthy_since == at(2)
    assert {c.type: c.reason for c in first.conditions}["Reconciling"] == "Stabilizing"

    held = decide(first.state, seen(v2=HEALTHY), STABLE_30S, at(2.5))
    assert (held.state.step, held.state.active) == ("Idle", "v2")


def test_a_break_starts_stability_over() -> None:
    first = decide(STARTING, seen(v2=HEALTHY), STABLE_30S, at(2)).state
    broken = decide(
        first,
        seen(v2=Deployment(job_state="RESTARTING", started_at=at(0.5), restarts=1)),
        STABLE_30S,
        at(2.2),
    ).state
    assert broken.step == "Starting" and broken.healthy_since is None
    again = decide(broken, seen(v2=HEALTHY), STABLE_30S, at(2.4)).state
    assert again.healthy_since == at(2.4) and again.step == "Starting"


def suspend_spec(suspend: bool) -> UpgradeSpec:
    return UpgradeSpec("v1", SPEC_V2.readiness_timeout, SPEC_V2.savepoint_timeout, 3, suspend=suspend)


@pytest.mark.parametrize(
    ("name", "deployment", "suspend", "actions", "reason", "ready"),
    [
        ("suspend asks for a savepoint", HEALTHY, True, [Apply("v1", "suspended")], "Suspending", False),
        ("suspended at a savepoint", SUSPENDED_V1, True, [], "Suspended", True),
        (
            "savepoint failed while suspending",
            Deployment(desired_state="suspended", job_state="RUNNING", error="Savepoint Error"),
            True,
            [Apply("v1", "suspended")],
            "SavepointFailed",
            False,
        ),
        ("resume from the savepoint", SUSPENDED_V1, False, [Apply("v1", "running")], "Resuming", False),
        ("running again", HEALTHY, False, [], "Running", True),
    ],
)
def test_suspend_and_resume(
    name: str, deployment: Deployment, suspend: bool, actions: list, reason: str, ready: bool
) -> None:
    decision = decide(IDLE_V1, seen(v1=deployment), suspend_spec(suspend), at(1))
    assert decision.actions == actions
    conditions = {c.type: c for c in decision.conditions}
    assert conditions["Ready"].reason == reason
    assert conditions["Ready"].status is ready
    if reason == "Suspended":
        assert decision.state.savepoint == SP


def rollback_spec(version: str = "v2") -> UpgradeSpec:
    return UpgradeSpec(
        version, SPEC_V2.readiness_timeout, SPEC_V2.savepoint_timeout, 3, rollback_requested=True
    )


def test_a_rollback_request_after_an_upgrade_resumes_the_previous_version_from_its_savepoint() -> None:
    live_v2 = UpgradeState("Idle", active="v2", previous="v1", savepoint=SP)
    decision = decide(live_v2, seen(v1=SUSPENDED_V1, v2=HEALTHY), rollback_spec(), at(1))
    assert decision.state.step == "RollingBack"
    assert (decision.state.active, decision.state.failed_version) == ("v1", "v2")
    assert decision.actions == [Delete("v2"), Apply("v1", "running", initial_savepoint=SP)]
    assert decision.state.deadline == at(1) + SPEC_V2.readiness_timeout


def test_a_rollback_request_while_starting_resumes_the_active_version() -> None:
    decision = decide(STARTING, seen(v1=SUSPENDED_V1, v2=NEVER_CHECKPOINTS), rollback_spec(), at(1))
    assert decision.actions == [Delete("v2"), Apply("v1", "running", initial_savepoint=SP)]


def test_a_rollback_request_after_the_window_is_refused_with_a_reason() -> None:
    live_v2 = UpgradeState("Idle", active="v2", previous="v1", savepoint=SP)
    decision = decide(live_v2, seen(v2=HEALTHY), rollback_spec(), at(1))  # v1's deployment retired
    assert decision.state == live_v2
    assert decision.actions == []
    assert {c.type: c.reason for c in decision.conditions}["RolledBack"] == "RollbackUnavailable"
    assert decision.events[0].reason == "RollbackUnavailable"


def test_a_failed_first_deploy_is_left_running_and_taken_once_healthy() -> None:
    failed_first = UpgradeState("Idle", active=None, failed_version="v1")
    still = decide(failed_first, seen(v1=NEVER_CHECKPOINTS), spec("v1"), at(10))
    stalled_reason = {c.type: c for c in still.conditions}["Stalled"]
    assert (still.state, stalled_reason.reason) == (failed_first, "ReadinessGatesFailed")
    assert "left running for inspection" in stalled_reason.message
    recovered = decide(failed_first, seen(v1=HEALTHY), spec("v1"), at(11))
    assert (recovered.state.active, recovered.state.failed_version) == ("v1", None)
    assert {c.type: c.status for c in recovered.conditions}["Ready"] is True


ADOPT = UpgradeSpec("v2", SPEC_V2.readiness_timeout, SPEC_V2.savepoint_timeout, 3, adopt=True)


@pytest.mark.parametrize(
    ("case", "state", "spec_", "active", "previous", "actions"),
    [
        (
            "a replay cut over: run v2 as deployed, suspend v1",
            IDLE_V1,
            ADOPT,
            "v2",
            "v1",
            [Apply("v2", "running"), Apply("v1", "suspended")],
        ),
        (
            "a replay rolled back: resume v1, suspend v2",
            UpgradeState("Idle", active="v2", previous="v1"),
            UpgradeSpec("v1", SPEC_V2.readiness_timeout, SPEC_V2.savepoint_timeout, 3, adopt=True),
            "v1",
            "v2",
            [Apply("v1", "running"), Apply("v2", "suspended")],
        ),
        ("already adopted: nothing to do", UpgradeState("Idle", active="v2"), ADOPT, "v2", None, []),
    ],
)
def test_adopting_a_replayed_version(
    case: str,
    state: UpgradeState,
    spec_: UpgradeSpec,
    active: str,
    previous: str | None,
    actions: list[Apply],
) -> None:
    decision = decide(state, seen(v1=HEALTHY, v2=HEALTHY), spec_, at(1))
    assert (decision.state.step, decision.state.active, decision.state.previous) == ("Idle", active, previous)
    assert decision.actions == actions


@pytest.mark.parametrize(
    ("case", "recorded", "before", "active", "target", "expected"),
    [
        ("first deploy writes its own output", {}, None, None, "v1", {"v1": "v1"}),
        (
            "a savepoint upgrade continues the output",
            {"v1": "v1"},
            "v1",
            "v1",
            "v2",
            {"v1": "v1", "v2": "v1"},
        ),
        (
            "and the next one too",
            {"v1": "v1", "v2": "v1"},
            "v2",
            "v2",
            "v3",
            {"v1": "v1", "v2": "v1", "v3": "v1"},
        ),
        ("a replayed version adopted: its own", {"v1": "v1"}, "v1", "v2", None, {"v1": "v1", "v2": "v2"}),
        ("a rollback changes nothing", {"v1": "v1", "v2": "v1"}, "v2", "v1", None, {"v1": "v1", "v2": "v1"}),
    ],
)
def test_output_lineage(
    case: str,
    recorded: dict[str, str],
    before: str | None,
    active: str | None,
    target: str | None,
    expected: dict[str, str],
) -> None:
    assert output_versions(recorded, before, active, target) == expected


# Suspend, resume and adoption happen at rest (Idle) and had no deadline: a job whose savepoint never came
# said "Suspending" forever. Each now has one, past which the job is Stalled with what did not happen.
SUSPEND = dataclasses.replace(spec("v1"), suspend=True)
ASKED_TO_SUSPEND = Deployment(desired_state="suspended", job_state="RUNNING", lifecycle="STABLE")
ASKED_TO_RESUME = Deployment(desired_state="running", job_state="CREATED", lifecycle="DEPLOYED")
IDLE_DEADLINES = [
    # name, state, observed, spec, now → deadline, stalled reason, events
    ("suspend starts", IDLE_V1, HEALTHY, SUSPEND, at(0), at(2), None, ["Suspending"]),
    # The deployment has not taken the change yet (or is missing): the same deadline, no event again.
    (
        "suspend not taken yet",
        dataclasses.replace(IDLE_V1, deadline=at(2)),
        HEALTHY,
        SUSPEND,
        at(1),
        at(2),
        None,
        [],
    ),
    (
        "suspend within",
        dataclasses.replace(IDLE_V1, deadline=at(2)),
        ASKED_TO_SUSPEND,
        SUSPEND,
        at(1),
        at(2),
        None,
        [],
    ),
    (
        "suspend overdue",
        dataclasses.replace(IDLE_V1, deadline=at(2)),
        ASKED_TO_SUSPEND,
        SUSPEND,
        at(3),
        at(2),
        "SuspendTimedOut",
        ["SuspendTimedOut"],
    ),
    (
        "suspend still overdue: said once",
        dataclasses.replace(IDLE_V1, deadline=at(2), overdue=True),
        ASKED_TO_SUSPEND,
        SUSPEND,
        at(4),
        at(2),
        "SuspendTimedOut",
        [],
    ),
    (
        "suspended at last",
        dataclasses.replace(IDLE_V1, deadline=at(2), overdue=True),
        SUSPENDED_V1,
        SUSPEND,
        at(5),
        None,
        None,
        ["Suspended"],
    ),
    ("resume starts", IDLE_V1, SUSPENDED_V1, spec("v1"), at(0), at(5), None, ["Resuming"]),
    (
        "resume within",
        dataclasses.replace(IDLE_V1, deadline=at(5)),
        ASKED_TO_RESUME,
        spec("v1"),
        at(1),
        at(5),
        None,
        [],
    ),
    (
        "resume overdue",
        dataclasses.replace(IDLE_V1, deadline=at(5)),
        ASKED_TO_RESUME,
        spec("v1"),
        at(6),
        at(5),
        "ResumeTimedOut",
        ["ResumeTimedOut"],
    ),
    (
        "running at last",
        dataclasses.replace(IDLE_V1, deadline=at(5), overdue=True),
        HEALTHY,
        spec("v1"),
        at(7),
        None,
        None,
        ["Resumed"],
    ),
    (
        "an adoption is bounded",
        IDLE_V1,
        HEALTHY,
        dataclasses.replace(spec("v2"), adopt=True),
        at(0),
        at(5),
        None,
        ["Adopted"],
    ),
    (
        "an adopted version that never runs",
        UpgradeState("Idle", active="v2", previous="v1", deadline=at(5)),
        ASKED_TO_RESUME,
        spec("v2"),
        at(6),
        at(5),
        "ResumeTimedOut",
        ["ResumeTimedOut"],
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "dep", "spec_", "now", "deadline", "reason", "events"),
    IDLE_DEADLINES,
    ids=[c[0] for c in IDLE_DEADLINES],
)
def test_suspend_resume_and_adoption_have_deadlines(
    name: str,
    state: UpgradeState,
    dep: Deployment,
    spec_: UpgradeSpec,
    now: datetime,
    deadline: datetime | None,
    reason: str | None,
    events: list[str],
) -> None:
    decision = decide(state, Observed({state.active or "": dep, spec_.version: dep}), spec_, now)
    assert decision.state.step == "Idle"
    assert decision.state.deadline == deadline
    conditions = {c.type: c for c in decision.conditions}
    if reason:
        assert conditions["Stalled"].status and conditions["Stalled"].reason == reason
        assert "still asking" in conditions["Stalled"].message
    else:
        assert not (conditions.get("Stalled") and conditions["Stalled"].status)
    assert [e.reason for e in decision.events] == events


def test_every_step_has_a_deadline_or_is_at_rest() -> None:
    from kappa.machines.savepoint_upgrade import DEADLINES, STEPS

    assert set(DEADLINES) == set(STEPS)
    assert DEADLINES["RolledBack"].startswith("none")
    for step in ("Savepointing", "Starting", "RollingBack"):
        assert "Timeout" in DEADLINES[step], step


# Events: one per transition, none on the looks after it. Each story feeds a decision's state to the next look
# (as the controller stores it), and ends with a look that changes nothing and must say nothing.
STABLE_FOR = dataclasses.replace(SPEC_V2, stable_for=timedelta(seconds=30))
RESTARTED_ONCE = Deployment(job_state="RESTARTING", started_at=at(0.5), restarts=1)
SAVEPOINT_ERROR = Deployment(desired_state="suspended", job_state="RUNNING", error="Savepoint Error")
NOT_RESUMING = Deployment(job_state="RESTARTING", lifecycle="DEPLOYED")
EVENT_STORIES = [
    # name, first state, [(observed, spec, now, the reasons said at that look)]
    (
        "suspend: begins, waits, is done, rests",
        IDLE_V1,
        [
            (seen(v1=HEALTHY), SUSPEND, at(0), ["Suspending"]),
            (seen(v1=ASKED_TO_SUSPEND), SUSPEND, at(0.5), []),
            (seen(v1=SUSPENDED_V1), SUSPEND, at(1), ["Suspended"]),
            (seen(v1=SUSPENDED_V1), SUSPEND, at(2), []),
        ],
    ),
    (
        "resume: begins, waits, runs, rests",
        IDLE_V1,
        [
            (seen(v1=SUSPENDED_V1), spec("v1"), at(0), ["Resuming"]),
            (seen(v1=ASKED_TO_RESUME), spec("v1"), at(1), []),
            (seen(v1=HEALTHY), spec("v1"), at(2), ["Resumed"]),
            (seen(v1=HEALTHY), spec("v1"), at(3), []),
        ],
    ),
    (
        "a suspend's savepoint fails: said once while it lasts",
        dataclasses.replace(IDLE_V1, deadline=at(2)),
        [
            (seen(v1=SAVEPOINT_ERROR), SUSPEND, at(1), ["SavepointFailed"]),
            (seen(v1=SAVEPOINT_ERROR), SUSPEND, at(1.5), []),
            (seen(v1=SUSPENDED_V1), SUSPEND, at(3), ["Suspended"]),
            (seen(v1=SUSPENDED_V1), SUSPEND, at(4), []),
        ],
    ),
    (
        "stability: begins, breaks, begins again, holds",
        STARTING,
        [
            (seen(v2=HEALTHY), STABLE_FOR, at(2), ["Stabilizing"]),
            (seen(v2=HEALTHY), STABLE_FOR, at(2.1), []),
            (seen(v2=RESTARTED_ONCE), STABLE_FOR, at(2.2), ["StabilityBroken"]),
            (seen(v2=RESTARTED_ONCE), STABLE_FOR, at(2.3), []),
            (seen(v2=HEALTHY), STABLE_FOR, at(2.4), ["Stabilizing"]),
            (seen(v2=HEALTHY), STABLE_FOR, at(3), ["UpgradeSucceeded"]),
            (seen(v2=HEALTHY), STABLE_FOR, at(4), []),
        ],
    ),
    (
        "a stuck rollback is said once, then its end",
        ROLLING_BACK,
        [
            (seen(v1=NOT_RESUMING), SPEC_V2, at(4), []),
            (seen(v1=NOT_RESUMING), SPEC_V2, at(6), ["RollbackStuck"]),
            (seen(v1=NOT_RESUMING), SPEC_V2, at(7), []),
            (seen(v1=HEALTHY), SPEC_V2, at(8), ["RolledBack"]),
            (seen(v1=HEALTHY), SPEC_V2, at(9), []),
        ],
    ),
    (
        "an upgrade, step by step",
        IDLE_V1,
        [
            (seen(v1=HEALTHY), SPEC_V2, at(0), ["UpgradeStarted"]),
            (seen(v1=HEALTHY), SPEC_V2, at(0.2), []),
            (seen(v1=SUSPENDED_V1), SPEC_V2, at(1), ["SavepointTaken"]),
            (seen(v1=SUSPENDED_V1, v2=NEVER_CHECKPOINTS), SPEC_V2, at(2), []),
            (seen(v1=SUSPENDED_V1, v2=HEALTHY), SPEC_V2, at(3), ["UpgradeSucceeded"]),
            (seen(v1=SUSPENDED_V1, v2=HEALTHY), SPEC_V2, at(4), []),
        ],
    ),
    (
        "an adoption, then the adopted version runs",
        IDLE_V1,
        [
            (
                seen(v1=HEALTHY, v2=ASKED_TO_RESUME),
                dataclasses.replace(spec("v2"), adopt=True),
                at(0),
                ["Adopted"],
            ),
            (seen(v1=SUSPENDED_V1, v2=ASKED_TO_RESUME), spec("v2"), at(1), []),
            (seen(v1=SUSPENDED_V1, v2=HEALTHY), spec("v2"), at(2), ["Resumed"]),
            (seen(v1=SUSPENDED_V1, v2=HEALTHY), spec("v2"), at(3), []),
        ],
    ),
]


@pytest.mark.parametrize(("name", "state", "looks"), EVENT_STORIES, ids=[s[0] for s in EVENT_STORIES])
def test_each_transition_is_said_once_and_a_look_that_changes_nothing_says_nothing(
    name: str, state: UpgradeState, looks: list[tuple[Observed, UpgradeSpec, datetime, list[str]]]
) -> None:
    said = []
    for observed, spec_, now, _ in looks:
        decision = decide(state, observed, spec_, now)
        said.append([e.reason for e in decision.events])
        state = decision.state
    assert said == [expected for *_, expected in looks]
