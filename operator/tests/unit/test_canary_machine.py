"""The canary machine, table-driven: deploy → analyse → promote | abort, no-data policy, deadlines."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from kappa.machines.canary import (
    CanaryObserved,
    CanarySpec,
    CanaryState,
    DeployCanary,
    RemoveCanary,
    decide,
    promotes,
)
from kappa.machines.runtime_facts import Deployment

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def spec(no_data: str = "Fail", version: str = "v2") -> CanarySpec:
    return CanarySpec(
        version=version,
        stable="v1",
        duration=timedelta(minutes=10),
        readiness_timeout=timedelta(minutes=5),
        max_restarts=0,
        max_lag_records=100,
        rate_min=0.8,
        rate_max=1.2,
        no_data=no_data,
    )  # type: ignore[arg-type]


RUNNING = Deployment(job_state="RUNNING", started_at=at(1), last_checkpoint_at=at(2))


def seen(
    canary: Deployment = RUNNING,
    lag: int | None = 10,
    rate: float | None = 100.0,
    stable_rate: float | None = 100.0,
    inputs: int = 5000,
) -> CanaryObserved:
    return CanaryObserved(canary, lag, rate, stable_rate, inputs)


DEPLOYING = CanaryState("Deploying", version="v2", entered_at=T0, deadline=at(5))
ANALYSING = CanaryState("Analysing", version="v2", entered_at=at(1), deadline=at(11))

CASES = [
    # name, state, observed, spec, now, step, actions, promote, stalled reason
    ("no change", CanaryState(), seen(), spec(version="v1"), at(0), "Idle", [], False, None),
    (
        "version change deploys the canary",
        CanaryState(),
        seen(Deployment(exists=False)),
        spec(),
        at(0),
        "Deploying",
        [DeployCanary("v2")],
        False,
        None,
    ),
    (
        "waiting for the canary",
        DEPLOYING,
        seen(Deployment(job_state="CREATED")),
        spec(),
        at(1),
        "Deploying",
        [DeployCanary("v2")],
        False,
        None,
    ),
    ("canary running: analyse", DEPLOYING, seen(), spec(), at(1), "Analysing", [], False, None),
    (
        "canary never starts: abort at deadline",
        DEPLOYING,
        seen(Deployment(job_state="CREATED")),
        spec(),
        at(5),
        "Aborted",
        [RemoveCanary("v2")],
        False,
        "CanaryFailedToStart",
    ),
    (
        "canary deploy failed: abort",
        DEPLOYING,
        seen(Deployment(lifecycle="FAILED", error="x")),
        spec(),
        at(1),
        "Aborted",
        [RemoveCanary("v2")],
        False,
        "CanaryFailedToStart",
    ),
    ("analysing, all fine so far", ANALYSING, seen(), spec(), at(5), "Analysing", [], False, None),
    (
        "a restart aborts at once",
        ANALYSING,
        seen(Deployment(job_state="RUNNING", restarts=1)),
        spec(),
        at(5),
        "Aborted",
        [RemoveCanary("v2")],
        False,
        "CanaryGateFailed",
    ),
    (
        "passes at the end: promote",
        ANALYSING,
        seen(),
        spec(),
        at(11),
        "Promoting",
        [RemoveCanary("v2")],
        True,
        None,
    ),
    (
        "output rate out of bounds: abort",
        ANALYSING,
        seen(rate=50.0),
        spec(),
        at(11),
        "Aborted",
        [RemoveCanary("v2")],
        False,
        "CanaryGateFailed",
    ),
    (
        "lag too high: abort",
        ANALYSING,
        seen(lag=5000),
        spec(),
        at(11),
        "Aborted",
        [RemoveCanary("v2")],
        False,
        "CanaryGateFailed",
    ),
    (
        "no data, policy Fail",
        ANALYSING,
        seen(inputs=0, rate=0.0, stable_rate=0.0),
        spec("Fail"),
        at(11),
        "Aborted",
        [RemoveCanary("v2")],
        False,
        "CanaryNoData",
    ),
    (
        "no data, policy Pass",
        ANALYSING,
        seen(inputs=0, rate=0.0, stable_rate=0.0),
        spec("Pass"),
        at(11),
        "Promoting",
        [RemoveCanary("v2")],
        True,
        None,
    ),
    (
        "no data, policy Extend",
        ANALYSING,
        seen(inputs=0, rate=0.0, stable_rate=0.0),
        spec("Extend"),
        at(11),
        "Analysing",
        [],
        False,
        None,
    ),
    (
        "no data again after the extension",
        CanaryState("Analysing", version="v2", entered_at=at(11), deadline=at(21), extensions=1),
        seen(inputs=0, rate=0.0, stable_rate=0.0),
        spec("Extend"),
        at(21),
        "Aborted",
        [RemoveCanary("v2")],
        False,
        "CanaryNoData",
    ),
    (
        "aborted waits for a new version",
        CanaryState("Aborted", version="v2", result="Aborted"),
        seen(),
        spec(),
        at(30),
        "Aborted",
        [],
        False,
        None,
    ),
    (
        "a newer version after an abort",
        CanaryState("Aborted", version="v2", result="Aborted"),
        seen(),
        spec(version="v3"),
        at(30),
        "Deploying",
        [DeployCanary("v3")],
        False,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "observed", "spec_", "now", "step", "actions", "promote", "reason"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_transitions(
    name: str,
    state: CanaryState,
    observed: CanaryObserved,
    spec_: CanarySpec,
    now: datetime,
    step: str,
    actions: list,
    promote: bool,
    reason: str | None,
) -> None:
    decision = decide(state, observed, spec_, now)
    assert decision.state.step == step
    assert decision.actions == actions
    assert promotes(state, decision) is promote
    conditions = {c.type: c for c in decision.conditions}
    if reason:
        assert conditions["Stalled"].reason == reason
        assert conditions["CanaryAborted"].status is True
    if step in ("Deploying", "Analysing"):
        assert decision.state.deadline is not None


def test_an_aborted_canary_never_touches_stable() -> None:
    decision = decide(ANALYSING, seen(rate=10.0), spec(), at(11))
    assert all(a.version == "v2" for a in decision.actions)
    assert {g.name: g.passed for g in decision.gates}["OutputRate"] is False


def test_the_extension_restarts_the_analysis_clock() -> None:
    extended = decide(ANALYSING, seen(inputs=0, rate=0.0, stable_rate=0.0), spec("Extend"), at(11)).state
    assert (extended.deadline, extended.extensions) == (at(21), 1)


# Every version change at every canary step. spec.version is one of: the candidate (v2), stable (v1), a
# newer version (v3); the upgrade machine is busy or at rest. What must never happen: a promotion of anything
# but the analysed candidate, a candidate left behind, or a canary that never starts again.
PROMOTING = CanaryState("Promoting", version="v2", entered_at=at(11), result="Promoted")
GONE = RemoveCanary("v2")  # the promoted candidate removed (again) once its upgrade is over
ABORTED = CanaryState("Aborted", version="v2", entered_at=at(11), result="Aborted")
PASSED = at(12)  # past ANALYSING's deadline, with every gate passing
VERSION_CHANGES = [
    # state, spec.version, stable, failed, upgrading, now → step, version, actions, promote
    (CanaryState(), "v2", "v1", None, False, at(0), "Deploying", "v2", [DeployCanary("v2")], False),
    (CanaryState(), "v2", "v1", "v2", False, at(0), "Idle", None, [], False),  # rolled back: not again
    (CanaryState(), "v2", "v1", None, True, at(0), "Idle", None, [], False),  # upgrade busy: wait
    (DEPLOYING, "v2", "v1", None, False, at(1), "Analysing", "v2", [], False),
    (
        DEPLOYING,
        "v3",
        "v1",
        None,
        False,
        at(1),
        "Deploying",
        "v3",
        [RemoveCanary("v2"), DeployCanary("v3")],
        False,
    ),
    (DEPLOYING, "v1", "v1", None, False, at(1), "Idle", None, [RemoveCanary("v2")], False),
    (ANALYSING, "v2", "v1", None, False, PASSED, "Promoting", "v2", [RemoveCanary("v2")], True),
    (
        ANALYSING,
        "v3",
        "v1",
        None,
        False,
        PASSED,
        "Deploying",
        "v3",
        [RemoveCanary("v2"), DeployCanary("v3")],
        False,
    ),
    (ANALYSING, "v1", "v1", None, False, PASSED, "Idle", None, [RemoveCanary("v2")], False),
    (PROMOTING, "v2", "v1", None, True, at(12), "Promoting", "v2", [], False),  # upgrade still carrying it
    (PROMOTING, "v3", "v1", None, True, at(12), "Promoting", "v2", [], False),  # v3 waits for the upgrade
    # Once the upgrade is over, the candidate is removed again: a crash may have lost the promotion's removal.
    (PROMOTING, "v2", "v2", None, False, at(20), "Idle", "v2", [GONE], False),  # promoted: at rest
    (PROMOTING, "v3", "v2", None, False, at(20), "Deploying", "v3", [GONE, DeployCanary("v3")], False),
    (PROMOTING, "v2", "v1", "v2", False, at(20), "Idle", "v2", [GONE], False),  # the upgrade rolled v2 back
    (PROMOTING, "v3", "v1", "v2", False, at(20), "Deploying", "v3", [GONE, DeployCanary("v3")], False),
    (ABORTED, "v2", "v1", None, False, at(20), "Aborted", "v2", [], False),
    (ABORTED, "v1", "v1", None, False, at(20), "Aborted", "v2", [], False),
    (ABORTED, "v3", "v1", None, False, at(20), "Deploying", "v3", [DeployCanary("v3")], False),
]


@pytest.mark.parametrize(
    ("state", "version", "stable", "failed", "upgrading", "now", "step", "candidate", "actions", "promote"),
    VERSION_CHANGES,
    ids=[
        f"{c[0].step}-spec-{c[1]}-stable-{c[2]}"
        + (f"-failed-{c[3]}" if c[3] else "")
        + ("-busy" if c[4] else "")
        for c in VERSION_CHANGES
    ],
)
def test_every_version_change_at_every_step(
    state: CanaryState,
    version: str,
    stable: str,
    failed: str | None,
    upgrading: bool,
    now: datetime,
    step: str,
    candidate: str | None,
    actions: list,
    promote: bool,
) -> None:
    the_spec = dataclasses.replace(spec(version=version), stable=stable, failed=failed, upgrading=upgrading)
    decision = decide(state, seen(), the_spec, now)
    assert (decision.state.step, decision.state.version) == (step, candidate)
    assert decision.actions == actions
    assert promotes(state, decision) is promote
    if promote:  # only the analysed candidate, and only when it is what spec asks for
        assert decision.state.version == state.version == version


def test_a_canary_promotes_again_after_a_promotion() -> None:
    """The stuck canary: after one promotion the next version change must start a new canary."""
    promoted = decide(ANALYSING, seen(), spec(), PASSED)
    assert promotes(ANALYSING, promoted)
    after = dataclasses.replace(spec(version="v3"), stable="v2")
    again = decide(promoted.state, seen(Deployment(exists=False)), after, at(30))
    assert again.state.step == "Deploying" and again.actions == [RemoveCanary("v2"), DeployCanary("v3")]


def test_every_working_step_has_a_deadline() -> None:
    """Deploying and Analysing carry their own deadline; Promoting is bounded by the upgrade's; Idle and
    Aborted are at rest."""
    from kappa.machines.canary import DEADLINES, STEPS

    assert set(DEADLINES) == set(STEPS)
    assert decide(CanaryState(), seen(), spec(), at(0)).state.deadline == at(5)
    assert decide(DEPLOYING, seen(), spec(), at(1)).state.deadline == at(11)
    for step, bound in DEADLINES.items():
        assert bound.startswith("none") == (step in ("Idle", "Aborted")), step


def test_each_canary_step_is_said_once_and_a_look_that_changes_nothing_says_nothing() -> None:
    """Events: a story through deploy → analyse → promote, each decision's state fed to the next look."""
    looks = [
        (seen(Deployment(exists=False)), at(0), ["CanaryStarted"]),
        (seen(Deployment(job_state="CREATED")), at(0.5), []),
        (seen(), at(1), ["CanaryAnalysing"]),
        (seen(), at(5), []),
        (seen(), at(11), ["CanaryPromoted"]),
    ]
    state, said = CanaryState(), []
    for observed, now, _ in looks:
        decision = decide(state, observed, spec(), now)
        said.append([e.reason for e in decision.events])
        state = decision.state
    assert said == [expected for *_, expected in looks]
    # The promotion is carried by the upgrade machine; while it works, and after, the canary says nothing.
    busy = dataclasses.replace(spec(), upgrading=True)
    assert decide(state, seen(), busy, at(12)).events == []
    settled = decide(state, seen(), spec(version="v1"), at(13))
    assert (settled.state.step, settled.events) == ("Idle", [])
    assert decide(settled.state, seen(), spec(version="v1"), at(14)).events == []
