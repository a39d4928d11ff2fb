"""The StreamJob's composition of machines, table-driven: which machine decides (canary, replay or savepoint
upgrade), and what a decision leaves in status (phase, history, retireAt, savepoints, held Ready, Kafka)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kappa.api.conditions import ready
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import CanaryStatus, PromotionRecord, StreamJobStatus, VersionDeployment
from kappa.machines import canary, upgrade
from kappa.machines import streamjob as machine
from kappa.machines.promotion import Live
from kappa.machines.runtime_facts import Deployment, Gate

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
STAMP = "2026-11-21T12:00:00Z"


def job(version: str = "v2", strategy: str = "savepoint", suspend: bool = False) -> StreamJobSpec:
    return StreamJobSpec.model_validate(
        {
            "version": version,
            "suspend": suspend,
            "source": {"kafka": {"bootstrapServers": "k:9092"}, "topics": ["clicks"]},
            "output": {"topic": {"base": "sessions"}},
            "flink": {"image": "img:1", "sql": ["INSERT INTO t SELECT 1"]},
            "upgrade": {"strategy": strategy, "rollbackWindow": "1h"},
        }
    )


def state(step: str = "Idle", active: str | None = "v1", **changes: Any) -> upgrade.UpgradeState:
    return upgrade.UpgradeState(step=step, active=active, **changes)  # type: ignore[arg-type]


LIVE_V2 = Live("v2", False, None)


@pytest.mark.parametrize(
    ("strategy", "ustate", "canary_step", "live", "path"),
    [
        # A new version while one is active: the strategy chooses.
        ("savepoint", state(), None, LIVE_V2, "upgrade"),
        ("canary", state(), None, LIVE_V2, "canary"),
        ("replay", state(), None, LIVE_V2, "replay"),
        # A first deploy is always a savepoint upgrade's Starting.
        ("canary", state(active=None), None, LIVE_V2, "upgrade"),
        ("replay", state(active=None), None, LIVE_V2, "upgrade"),
        # The version that failed is not analysed again; the active one needs no canary.
        ("canary", state(failed_version="v2"), None, LIVE_V2, "upgrade"),
        ("canary", state(active="v2"), None, LIVE_V2, "upgrade"),
        # A canary under way goes on whatever the strategy; a promotion settles once the upgrade rests.
        ("savepoint", state(), "Analysing", LIVE_V2, "canary"),
        ("canary", state("Starting", target="v2"), "Promoting", LIVE_V2, "upgrade"),
        ("canary", state(), "Promoting", LIVE_V2, "canary"),
        # A replayed version the job adopts after its cutover is not replayed again.
        ("replay", state(), None, Live("v2", True, PromotionRecord(run="r", version="v2")), "upgrade"),
        ("replay", state("Starting", target="v2"), None, LIVE_V2, "upgrade"),
        ("replay", state(active="v2"), None, LIVE_V2, "upgrade"),
    ],
)
def test_which_machine_decides(
    strategy: str, ustate: upgrade.UpgradeState, canary_step: str | None, live: Live, path: str
) -> None:
    assert choose(job(strategy=strategy), ustate, canary_step, live) == path


def choose(spec: StreamJobSpec, ustate: upgrade.UpgradeState, canary_step: str | None, live: Live) -> str:
    """As the reconcile asks (controllers/streamjob/reconcile.py), for a canary that does not promote."""
    if machine.analyses(spec, ustate, canary_step):
        return "canary"
    return "replay" if machine.replays(spec, ustate, live) else "upgrade"


def test_a_suspended_job_is_not_replayed() -> None:
    assert choose(job(strategy="replay", suspend=True), state(), None, LIVE_V2) == "upgrade"


@pytest.mark.parametrize(
    ("phase", "found", "condition", "reason", "events", "create", "job_phase"),
    [
        (None, False, "Reconciling", "Replaying", ["ReplayUpgrade"], True, "Upgrading"),
        ("CatchingUp", True, "Reconciling", "Replaying", [], False, "Upgrading"),
        ("Failed", True, "Stalled", "ReplayFailed", [], False, "Running"),
        ("RolledBack", True, "Stalled", "ReplayFailed", [], False, "Running"),
    ],
)
def test_a_replay_upgrade_step(
    phase: str | None,
    found: bool,
    condition: str,
    reason: str,
    events: list[str],
    create: bool,
    job_phase: str,
) -> None:
    step = machine.replay_step("v2", "v1", "j-v2", phase, found)
    true = [c for c in step.conditions if c.status]
    assert [(c.type, c.reason) for c in true] == [(condition, reason)]
    assert [e.reason for e in step.events] == events
    assert step.create_run is create
    assert step.stalled is (condition == "Stalled")
    assert step.patch == {"phase": job_phase, "replay": {"run": "j-v2", "version": "v2", "phase": phase}}


def _canary_decision(version: str, gates: list[Gate]) -> canary.CanaryDecision:
    return canary.CanaryDecision(
        canary.CanaryState(step="Analysing", version=version, entered_at=T0), gates=gates
    )


def test_the_canary_entry_forgets_what_was_seen_of_another_candidate() -> None:
    gate = {"name": "Lag", "passed": True, "message": ""}
    earlier = CanaryStatus.model_validate(
        {
            "step": "Analysing",
            "version": "v2",
            "jobState": "RUNNING",
            "restarts": 2,
            "baseline": {"input": 5},
            "gates": [gate],
        }
    )
    seen = machine.CanarySeen("RUNNING", 3, None, "t")
    same = machine.canary_status(_canary_decision("v2", []), seen, earlier).whole()
    assert (same["restarts"], same["baseline"], same["gates"], same["startedAt"]) == (
        3,
        {"input": 5},
        [gate],
        STAMP,
    )
    other = machine.canary_status(_canary_decision("v3", []), seen, earlier).whole()
    assert (other["jobState"], other["restarts"], other["baseline"], other["gates"]) == (None, 0, None, [])


@pytest.mark.parametrize(
    ("ok", "why", "reason"),
    [
        (True, "KafkaTopic t: Ready", "Running"),
        (False, "KafkaTopic t: not ready yet", "OutputNotReady"),
        (False, "KafkaTopic t: Ready=False: bad config", "OutputTopicFailed"),
        (False, "KafkaTopic (kafka.strimzi.io) is not served by this cluster", "OutputTopicFailed"),
    ],
)
def test_ready_waits_for_the_output_topic(ok: bool, why: str, reason: str) -> None:
    decision = upgrade.UpgradeDecision(state(), conditions=ready("Running", "v1 runs"))
    held = machine.hold_for_topic(decision, ok, why)
    assert {c.reason for c in held.conditions} == {reason}


@pytest.mark.parametrize(
    ("ustate", "spec", "phase"),
    [
        (state(), job(), "Running"),
        (state("Starting", active=None, target="v2"), job(), "Deploying"),
        (state("Starting", target="v2"), job(), "Upgrading"),
        (state("Savepointing", target="v2"), job(), "Upgrading"),
        (state("RollingBack"), job(), "RollingBack"),
        (state("RolledBack"), job(), "Running"),
        (state(failed_version="v2"), job(), "Failed"),
        (state(failed_version="v2"), job(suspend=True), "Suspended"),
    ],
)
def test_phase(ustate: upgrade.UpgradeState, spec: StreamJobSpec, phase: str) -> None:
    assert machine.phase(ustate, spec) == phase


def _status_after(
    before: upgrade.UpgradeState, after: upgrade.UpgradeState, status: dict[str, Any]
) -> dict[str, Any]:
    views = {v: Deployment(job_state="RUNNING") for v in ("v1", "v2")}
    seen: dict[str, tuple[str, str | None]] = {v: (f"j-{v}", None) for v in views}
    typed = StreamJobStatus.model_validate(status)
    return machine.version_status(job(), typed, before, upgrade.UpgradeDecision(after), views, seen, T0)


def test_an_upgrade_that_succeeds_records_history_and_a_retire_time_for_the_previous_version() -> None:
    before = state("Starting", target="v2", savepoint="s3://sp/1")
    after = state("Idle", active="v2", previous="v1", savepoint="s3://sp/1")
    fields = _status_after(before, after, {})
    roles = {d["version"]: (d["role"], d.get("retireAt")) for d in fields["deployments"]}
    assert roles == {"v1": ("previous", "2026-11-21T13:00:00Z"), "v2": ("active", None)}
    assert [(h["version"], h["outcome"]) for h in fields["history"]] == [
        ("v2", "Active"),
        ("v1", "Superseded"),
    ]
    assert [e.wire() for e in machine.savepoints(job(), [], before, after, T0)] == [
        {"version": "v1", "path": "s3://sp/1", "takenAt": STAMP, "reason": "Upgrade"}
    ]
    assert (fields["phase"], fields["stableVersion"], fields["upgrade"]["step"]) == ("Running", "v2", "Idle")


def test_a_previous_version_keeps_its_retire_time() -> None:
    kept = {
        "deployments": [{"version": "v1", "deployment": "j-v1", "retireAt": "2026-11-21T12:30:00Z"}],
        "stableVersion": "v1",
    }
    fields = _status_after(state(active="v2"), state(active="v2"), kept)
    assert [d.get("retireAt") for d in fields["deployments"]] == ["2026-11-21T12:30:00Z", None]


def test_a_rollback_is_history_once() -> None:
    before = state("RollingBack", target="v2", failed_version="v2")
    after = state("RolledBack", failed_version="v2")
    assert machine.rolled_back(before, after)
    gate = {"name": "g", "passed": False, "message": "m"}
    fields = _status_after(
        before, after, {"stableVersion": "v1", "upgrade": {"step": "RollingBack", "gates": [gate]}}
    )
    assert [(h["version"], h["outcome"]) for h in fields["history"]] == [("v2", "RolledBack")]
    assert fields["upgrade"]["gates"] == [gate]  # the last judgement stays visible
    assert not machine.rolled_back(after, after)


def test_history_is_bounded() -> None:
    old = [{"version": f"v{i}", "outcome": "Active", "at": STAMP} for i in range(machine.HISTORY)]
    fields = _status_after(state(active="v1"), state(active="v2"), {"history": old})
    assert len(fields["history"]) == machine.HISTORY
    assert fields["history"][-1] == {"version": "v1", "outcome": "Superseded", "at": STAMP}


def test_a_replay_retires_what_it_replaced_with_its_own_window() -> None:
    a, b, c = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
    entries = [
        VersionDeployment(version="v1", deployment="j-v1", role="previous", retire_at=a),
        VersionDeployment(version="v2", deployment="j-v2", role="active"),
    ]
    entries = machine.retire_with_run(
        entries, PromotionRecord(run="r", version="v2", from_version="v1", retire_at=b)
    )
    assert entries[0].retire_at == b
    rolled_back = PromotionRecord(run="r", version="v2", from_version="v1", retire_at=c, rolled_back=True)
    assert machine.retire_with_run(entries, rolled_back)[0].retire_at == b


@pytest.mark.parametrize(
    ("requested", "handled", "answered"),
    [(None, None, None), ("r1", None, "r1"), ("r1", "r1", None), ("r2", "r1", "r2")],
)
def test_a_rollback_request_is_answered_once(
    requested: str | None, handled: str | None, answered: str | None
) -> None:
    assert machine.rollback_request(requested, handled) == answered


def test_a_promoted_canary_upgrades_to_the_version_it_analysed() -> None:
    spec = machine.upgrade_spec(job("v3"), Live("v3", False, None), "v2", rollback_requested=False)
    assert (spec.version, spec.readiness_timeout > timedelta(0), spec.adopt) == ("v2", True, False)


@pytest.mark.parametrize(
    ("down", "answering", "condition", "events"),
    [
        (
            "Kafka at k:9092 does not answer",
            True,
            ("KafkaReachable", False, "KafkaUnreachable"),
            ["KafkaUnreachable"],
        ),
        (None, True, ("KafkaReachable", True, "KafkaAnswers"), []),
        (None, False, None, []),
    ],
)
def test_kafka_reachability(
    down: str | None, answering: bool, condition: tuple[str, bool, str] | None, events: list[str]
) -> None:
    conditions, said = machine.kafka_reachability(down, answering, "k:9092")
    assert [(c.type, c.status, c.reason) for c in conditions] == ([condition] if condition else [])
    assert [e.reason for e in said] == events
