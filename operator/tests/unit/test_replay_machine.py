"""The ReplayRun machine, table-driven: every phase, every deadline, abort, approval and rollback."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from kappa.machines.lag import LagStatus
from kappa.machines.preflight import Check
from kappa.machines.replay import (
    BEFORE_CUTOVER,
    FINAL,
    CreateReplay,
    CutOver,
    DecommissionPrevious,
    PromoteVersion,
    RemoveReplay,
    ReplayObserved,
    ReplaySpec,
    ReplayState,
    StopReplay,
    cleanup_overdue,
    next_look,
)
from kappa.machines.replay_abort import waiting_for_job
from kappa.machines.replay_phases import DEADLINES, PHASES, decide
from kappa.machines.runtime_facts import Deployment

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TIMEOUTS = {
    "Preflight": timedelta(minutes=5),
    "Replaying": timedelta(hours=1),
    "CatchingUp": timedelta(hours=1),
    "Validating": timedelta(minutes=30),
    "AwaitingApproval": timedelta(hours=72),
    "CuttingOver": timedelta(minutes=5),
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def spec(approval: str = "Automatic", bounded: bool = False) -> ReplaySpec:
    return ReplaySpec(
        version="v2",
        view=None if bounded else "sessions",
        bounded=bounded,
        approval=approval,
        max_lag_records=100,
        stable_for=timedelta(minutes=2),  # type: ignore[arg-type]
        rollback_window=timedelta(minutes=30),
        timeouts=TIMEOUTS,
    )


def in_phase(phase: str, entered: float = 0, **kw: object) -> ReplayState:
    timeout = TIMEOUTS.get(phase)
    return ReplayState(
        phase=phase,
        entered_at=at(entered),  # type: ignore[arg-type]
        deadline=at(entered) + timeout if timeout else None,
        **kw,
    )  # type: ignore[arg-type]


OK = Check("StartRetained", "OK", "StartRetained", "retained")
LOST = Check("StartRetained", "Error", "StartDeletedByRetention", "clicks[0]: start 0 < log start 9")
RUNNING = Deployment(job_state="RUNNING", started_at=at(1), last_checkpoint_at=at(2))
GATES_OK = (Check("CountRatio", "OK", "WithinBounds", "1.00"),)
GATES_BAD = (Check("CountRatio", "Error", "OutOfBounds", "ratio 0.50 outside [0.99, 1.01]"),)
CUTTING = in_phase("CuttingOver", cutover_from="v1", cutover_to="v2")
OBSERVING = in_phase("Observing", cutover_from="v1", cutover_to="v2", cut_over_at=at(0))

CASES = [
    # name, state, observed, spec, now, next phase, actions, stalled reason
    (
        "a conflict waits, naming the holder",
        ReplayState(),
        ReplayObserved(holder="sessionizer-v3"),
        spec(),
        at(0),
        "Pending",
        [],
        None,
    ),
    ("pending goes to preflight", ReplayState(), ReplayObserved(), spec(), at(0), "Preflight", [], None),
    (
        "preflight still running",
        in_phase("Preflight"),
        ReplayObserved(),
        spec(),
        at(1),
        "Preflight",
        [],
        None,
    ),
    (
        "preflight deadline",
        in_phase("Preflight"),
        ReplayObserved(),
        spec(),
        at(5),
        "Failed",
        [],
        "PreflightTimedOut",
    ),
    (
        "failed preflight creates nothing",
        in_phase("Preflight"),
        ReplayObserved(preflight=(LOST,)),
        spec(),
        at(1),
        "Failed",
        [],
        "PreflightFailed",
    ),
    (
        "passed preflight starts the replay",
        in_phase("Preflight"),
        ReplayObserved(preflight=(OK,)),
        spec(),
        at(1),
        "Replaying",
        [CreateReplay("v2")],
        None,
    ),
    (
        "replaying",
        in_phase("Replaying"),
        ReplayObserved(replay=RUNNING),
        spec(),
        at(5),
        "Replaying",
        [CreateReplay("v2")],
        None,
    ),
    (
        "fell off retention",
        in_phase("Replaying"),
        ReplayObserved(fell_off=("clicks[0]: 10 < 20",)),
        spec(),
        at(5),
        "Failed",
        [RemoveReplay("v2")],
        "FellOffRetention",
    ),
    (
        "replay job failed",
        in_phase("Replaying"),
        ReplayObserved(replay=Deployment(job_state="FAILED")),
        spec(),
        at(5),
        "Failed",
        [RemoveReplay("v2")],
        "ReplayJobFailed",
    ),
    (
        "replay deadline",
        in_phase("Replaying"),
        ReplayObserved(replay=RUNNING),
        spec(),
        at(60),
        "Failed",
        [RemoveReplay("v2")],
        "ReplayTimedOut",
    ),
    (
        "history replayed: catch up",
        in_phase("Replaying"),
        ReplayObserved(replay=RUNNING, reached_target=True),
        spec(),
        at(5),
        "CatchingUp",
        [],
        None,
    ),
    (
        "bounded replay ends as a backfill",
        in_phase("Replaying"),
        ReplayObserved(replay=RUNNING, reached_target=True),
        spec(bounded=True),
        at(5),
        "Succeeded",
        [StopReplay("v2")],
        None,
    ),
    (
        "within lag, not yet for stableFor",
        in_phase("CatchingUp"),
        ReplayObserved(replay=RUNNING, max_partition_lag=5),
        spec(),
        at(1),
        "CatchingUp",
        [],
        None,
    ),
    (
        "caught up for stableFor",
        in_phase("CatchingUp", caught_up_since=at(0)),
        ReplayObserved(replay=RUNNING, max_partition_lag=5),
        spec(),
        at(2),
        "Validating",
        [],
        None,
    ),
    (
        "stalled consumer is not caught up",
        in_phase("CatchingUp", caught_up_since=at(0)),
        ReplayObserved(replay=RUNNING, max_partition_lag=5, lag_status=LagStatus.STALL),
        spec(),
        at(2),
        "CatchingUp",
        [],
        None,
    ),
    (
        "catch-up deadline",
        in_phase("CatchingUp"),
        ReplayObserved(replay=RUNNING, max_partition_lag=500),
        spec(),
        at(60),
        "Failed",
        [RemoveReplay("v2")],
        "CatchUpTimedOut",
    ),
    ("validation running", in_phase("Validating"), ReplayObserved(), spec(), at(1), "Validating", [], None),
    (
        "validation deadline",
        in_phase("Validating"),
        ReplayObserved(),
        spec(),
        at(30),
        "Failed",
        [RemoveReplay("v2")],
        "ValidationTimedOut",
    ),
    (
        "failed gate stops before cutover",
        in_phase("Validating"),
        ReplayObserved(validation=GATES_BAD),
        spec(),
        at(1),
        "Failed",
        [StopReplay("v2")],
        "ValidationFailed",
    ),
    (
        "automatic approval cuts over",
        in_phase("Validating"),
        ReplayObserved(validation=GATES_OK, alias_target="v1", expected_target="v1"),
        spec(),
        at(1),
        "CuttingOver",
        [CutOver("sessions", "v1", "v2")],
        None,
    ),
    (
        "manual approval waits",
        in_phase("Validating"),
        ReplayObserved(validation=GATES_OK, alias_target="v1", expected_target="v1"),
        spec("Manual"),
        at(1),
        "AwaitingApproval",
        [],
        None,
    ),
    (
        "approved",
        in_phase("AwaitingApproval"),
        ReplayObserved(approve=True, alias_target="v1", expected_target="v1"),
        spec("Manual"),
        at(10),
        "CuttingOver",
        [CutOver("sessions", "v1", "v2")],
        None,
    ),
    (
        "approval deadline",
        in_phase("AwaitingApproval"),
        ReplayObserved(),
        spec("Manual"),
        at(72 * 60),
        "Failed",
        [StopReplay("v2")],
        "ApprovalTimedOut",
    ),
    (
        "cutover repeated until the alias moves",
        CUTTING,
        ReplayObserved(alias_target="v1"),
        spec(),
        at(1),
        "CuttingOver",
        [CutOver("sessions", "v1", "v2")],
        None,
    ),
    (
        "cut over: promote and observe",
        CUTTING,
        ReplayObserved(alias_target="v2"),
        spec(),
        at(1),
        "Observing",
        [PromoteVersion("v2")],
        None,
    ),
    (
        "someone repointed the view",
        CUTTING,
        ReplayObserved(alias_target="hotfix"),
        spec(),
        at(1),
        "CuttingOver",
        [],
        "AliasMoved",
    ),
    (
        "cutover deadline",
        CUTTING,
        ReplayObserved(alias_target="v1"),
        spec(),
        at(5),
        "CuttingOver",
        [],
        "CutoverTimedOut",
    ),
    ("observing", OBSERVING, ReplayObserved(alias_target="v2"), spec(), at(10), "Observing", [], None),
    (
        "rollback within the window",
        OBSERVING,
        ReplayObserved(alias_target="v2", rollback=True),
        spec(),
        at(10),
        "RolledBack",
        [CutOver("sessions", "v2", "v1")],
        "RolledBack",
    ),
    (
        "window over: decommission",
        OBSERVING,
        ReplayObserved(alias_target="v2"),
        spec(),
        at(30),
        "Succeeded",
        [DecommissionPrevious()],
        None,
    ),
    (
        "final stays final",
        in_phase("Succeeded"),
        ReplayObserved(abort=True),
        spec(),
        at(99),
        "Succeeded",
        [],
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "observed", "spec_", "now", "phase", "actions", "reason"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_phases(
    name: str,
    state: ReplayState,
    observed: ReplayObserved,
    spec_: ReplaySpec,
    now: datetime,
    phase: str,
    actions: list,
    reason: str | None,
) -> None:
    decision = decide(state, observed, spec_, now)
    assert decision.state.phase == phase
    assert decision.actions == actions
    conditions = {c.type: c for c in decision.conditions}
    if reason:
        assert conditions["Stalled"].reason == reason
        assert conditions["Stalled"].status is True
    if decision.state.phase in (
        "Preflight",
        "Replaying",
        "CatchingUp",
        "Validating",
        "AwaitingApproval",
        "CuttingOver",
    ):
        assert decision.state.deadline is not None, "every working phase has a deadline"


@pytest.mark.parametrize("phase", sorted(BEFORE_CUTOVER))
def test_abort_before_cutover_removes_only_what_the_run_created(phase: str) -> None:
    decision = decide(in_phase(phase), ReplayObserved(abort=True), spec(), at(1))
    assert decision.state.phase == "Aborted"
    created = phase not in ("Pending", "Preflight")
    assert decision.actions == ([RemoveReplay("v2")] if created else [])
    assert not any(isinstance(a, CutOver) for a in decision.actions)


def test_abort_after_cutover_is_not_an_abort() -> None:
    decision = decide(OBSERVING, ReplayObserved(alias_target="v2", abort=True), spec(), at(1))
    assert decision.state.phase == "Observing"


def test_the_cutover_intent_is_recorded_with_the_action() -> None:
    decision = decide(
        in_phase("Validating"),
        ReplayObserved(validation=GATES_OK, alias_target="v1", expected_target="v1"),
        spec(),
        at(1),
    )
    assert (decision.state.cutover_from, decision.state.cutover_to) == ("v1", "v2")
    again = decide(decision.state, ReplayObserved(alias_target="v1"), spec(), at(1.1))
    assert again.actions == decision.actions  # re-entry after a crash asks for the same CAS, nothing more


def test_a_refused_cutover_can_still_be_aborted() -> None:
    refused = ReplayState("CuttingOver", cutover_from="v1", cutover_to="v2")
    decision = decide(refused, ReplayObserved(alias_target="(sessions_hotfix)", abort=True), spec(), at(1))
    assert decision.state.phase == "Aborted"
    assert decision.actions == [RemoveReplay("v2")]


def test_a_done_cutover_cannot_be_aborted_only_rolled_back() -> None:
    switched = ReplayState("CuttingOver", cutover_from="v1", cutover_to="v2")
    decision = decide(switched, ReplayObserved(alias_target="v2", abort=True), spec(), at(1))
    assert decision.state.phase == "Observing"


def test_an_abort_removes_what_a_failed_validation_kept() -> None:
    failed = ReplayState("Failed", reason="ValidationFailed")
    decision = decide(failed, ReplayObserved(abort=True), spec(), at(1))
    assert (decision.state.phase, decision.actions) == ("Aborted", [RemoveReplay("v2")])


def test_an_abort_of_a_failed_preflight_removes_nothing() -> None:
    failed = ReplayState("Failed", reason="PreflightFailed")
    decision = decide(failed, ReplayObserved(abort=True), spec(), at(1))
    assert (decision.state.phase, decision.actions) == ("Failed", [])


# Pending and the end states' cleanup had no deadline: a run could wait for a held view or a missing
# StreamJob, or retry a cleanup, forever.
WITH_PENDING = dataclasses.replace(spec(), timeouts={**TIMEOUTS, "Pending": timedelta(hours=24)})
HELD = ReplayObserved(holder="first")
PENDING_CASES = [
    # name, state, now → phase, reason, deadline, events
    ("the wait begins", ReplayState(), at(0), "Pending", None, at(24 * 60), []),
    (
        "still waiting",
        ReplayState(entered_at=at(0), deadline=at(24 * 60)),
        at(60),
        "Pending",
        None,
        at(24 * 60),
        [],
    ),
    (
        "held too long",
        ReplayState(entered_at=at(0), deadline=at(24 * 60)),
        at(24 * 60),
        "Failed",
        "ViewHeldTooLong",
        None,
        ["ViewHeldTooLong"],
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "now", "phase", "reason", "deadline", "events"),
    PENDING_CASES,
    ids=[c[0] for c in PENDING_CASES],
)
def test_waiting_for_a_held_view_has_a_deadline(
    name: str,
    state: ReplayState,
    now: datetime,
    phase: str,
    reason: str | None,
    deadline: datetime | None,
    events: list[str],
) -> None:
    decision = decide(state, HELD, WITH_PENDING, now)
    assert (decision.state.phase, decision.state.reason) == (phase, reason)
    assert decision.actions == []  # nothing was created, so nothing is removed
    if phase == "Pending":
        assert decision.state.deadline == deadline
    assert [e.reason for e in decision.events] == events


@pytest.mark.parametrize(
    ("waited", "phase", "reason"), [(60, "Pending", None), (24 * 60, "Failed", "JobNotFound")]
)
def test_waiting_for_a_missing_streamjob_has_a_deadline(
    waited: float, phase: str, reason: str | None
) -> None:
    decision = waiting_for_job(ReplayState(), at(0), timedelta(hours=24), at(waited), "sessionizer")
    assert (decision.state.phase, decision.state.reason) == (phase, reason)
    conditions = {c.type: c for c in decision.conditions}
    if reason:
        assert conditions["Stalled"].reason == reason and "spec.jobRef.name" in conditions["Stalled"].message
    else:
        assert conditions["Reconciling"].reason == "WaitingForJob"


def test_an_end_states_cleanup_has_a_deadline() -> None:
    failed = in_phase("Failed", entered=0, reason="ReplayFailed")
    assert not cleanup_overdue(failed, timedelta(hours=1), at(59))
    assert cleanup_overdue(failed, timedelta(hours=1), at(60))


def test_every_phase_has_a_deadline_or_is_an_end_state() -> None:
    assert set(DEADLINES) == set(PHASES)
    for phase, bound in DEADLINES.items():
        assert bound.startswith("none") == (phase in FINAL), phase
        assert "timeout" in bound.lower() or "window" in bound.lower(), phase


@pytest.mark.parametrize(
    ("asked", "interval", "following"),
    [(None, 10.0, 10.0), (2.0, 10.0, 2.0), (30.0, 10.0, 10.0), (0.2, 10.0, 1.0), (5.0, 1.0, 1.0)],
)
def test_the_next_look_is_what_the_phase_asked_within_the_interval(
    asked: float | None, interval: float, following: float
) -> None:
    decision = decide(in_phase("Observing"), ReplayObserved(), spec(), at(0))
    assert next_look(dataclasses.replace(decision, requeue_after=asked), interval) == following


def test_a_phase_about_to_move_asks_to_be_looked_at_sooner_than_one_at_rest() -> None:
    cutting = decide(in_phase("Validating"), ReplayObserved(validation=()), spec(), at(0))
    assert cutting.state.phase == "CuttingOver"
    waiting = decide(in_phase("AwaitingApproval"), ReplayObserved(), spec("Manual"), at(0))
    assert next_look(cutting, 10.0) < next_look(waiting, 10.0) == 10.0
