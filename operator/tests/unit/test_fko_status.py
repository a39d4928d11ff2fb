"""Reading FKO and Strimzi status as the real operators write it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kappa.machines.fko import (
    PERIODIC_CHECKPOINT_INTERVAL,
    SNAPSHOT_RESOURCE_ENABLED,
    count_restarts,
    deployment_facts,
    deployment_view,
    fko_configuration,
    flink_duration,
    kafka_topic_ready,
    only_checkpointed,
)
from kappa.machines.upgrade import UpgradeSpec, gates

FD = {
    "metadata": {"generation": 3},
    "spec": {"job": {"state": "suspended"}},
    "status": {
        "observedGeneration": 3,
        "lifecycleState": "SUSPENDED",
        "jobStatus": {
            "state": "FINISHED",
            "startTime": "1795280000000",
            "upgradeSavepointPath": "file:///sp/1",
            "savepointInfo": {"lastSavepoint": {"location": "file:///sp/1", "timeStamp": 1795280100000}},
            "checkpointInfo": {"lastCheckpoint": {"timeStamp": 1795280050000}},
        },
    },
}


def test_a_suspended_deployment_with_its_savepoint() -> None:
    view = deployment_view(FD, restarts=2)
    assert (view.desired_state, view.job_state, view.lifecycle) == ("suspended", "FINISHED", "SUSPENDED")
    assert view.upgrade_savepoint_path == "file:///sp/1"
    assert view.savepoint_at == datetime.fromtimestamp(1795280100, tz=UTC)
    assert view.last_checkpoint_at is not None and view.started_at is not None
    assert view.last_checkpoint_at > view.started_at
    assert view.restarts == 2 and view.error is None


def test_a_missing_deployment() -> None:
    assert deployment_view(None).exists is False


# --- checkpoints, as FKO reports them ----------------------------------------------------------------------

START = 1795280000000
LEGACY = {SNAPSHOT_RESOURCE_ENABLED: "false", PERIODIC_CHECKPOINT_INTERVAL: "10 s"}


def running(configuration: dict[str, str], checkpoint_info: dict[str, Any] | None) -> dict[str, Any]:
    """A RUNNING FlinkDeployment whose status FKO wrote, with this checkpointInfo."""
    job_status: dict[str, Any] = {"state": "RUNNING", "startTime": str(START)}
    if checkpoint_info is not None:
        job_status["checkpointInfo"] = checkpoint_info
    return {
        "metadata": {"generation": 1},
        "spec": {"flinkVersion": "v1_20", "flinkConfiguration": configuration, "job": {"state": "running"}},
        "status": {"lifecycleState": "STABLE", "jobStatus": job_status},
    }


def periodic(trigger_ms: int) -> dict[str, Any]:
    """checkpointInfo after FKO's SnapshotObserver saw the checkpoint it triggered at trigger_ms complete."""
    return {
        "lastCheckpoint": {"timeStamp": trigger_ms, "triggerType": "PERIODIC", "formatType": "FULL"},
        "lastPeriodicCheckpointTimestamp": trigger_ms,
    }


GATE_SPEC = UpgradeSpec("v2", timedelta(minutes=5), timedelta(minutes=5), max_restarts=3)


IN_PROGRESS = {
    "triggerId": "b2",
    "triggerTimestamp": START + 15_000,
    "triggerType": "PERIODIC",
    "formatType": "FULL",
}


@pytest.mark.parametrize(
    ("what", "fd", "passed"),
    [
        # Default FKO: periodic checkpoints become FlinkStateSnapshot resources, checkpointInfo stays at its
        # defaults, however often Flink itself checkpoints.
        ("snapshot resources (FKO's default)", running({}, {"lastPeriodicCheckpointTimestamp": 0}), False),
        ("no checkpointInfo at all", running({}, None), False),
        (
            "legacy, first trigger in progress",
            running(LEGACY, {**IN_PROGRESS, "lastPeriodicCheckpointTimestamp": 0}),
            False,
        ),
        ("legacy, completed after the start", running(LEGACY, periodic(START + 5000)), True),
        ("legacy, only the previous run's", running(LEGACY, periodic(START - 60_000)), False),
        (
            "legacy, the next one in progress",
            running(LEGACY, {**periodic(START + 5000), **IN_PROGRESS}),
            True,
        ),
    ],
)
def test_the_checkpointed_gate_reads_what_fko_reports(what: str, fd: dict[str, Any], passed: bool) -> None:
    [gate] = [g for g in gates(deployment_view(fd), GATE_SPEC, False) if g.name == "Checkpointed"]
    assert gate.passed is passed, what


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 s", timedelta(seconds=10)),
        ("1min", timedelta(minutes=1)),
        ("2 m", timedelta(minutes=2)),
        ("500", timedelta(milliseconds=500)),
        ("3 Seconds", timedelta(seconds=3)),
        ("1 d", timedelta(days=1)),
        ("0 s", timedelta(0)),
        ("", None),
        ("1h30m", None),
        ("-1 s", None),
        ("0 0 * * * ?", None),
    ],
)
def test_flink_durations(text: str, expected: timedelta | None) -> None:
    assert flink_duration(text) == expected


@pytest.mark.parametrize(
    ("own", "readiness", "interval"),
    [
        ({}, timedelta(minutes=5), "60 s"),
        ({}, timedelta(seconds=15), "3 s"),
        ({}, timedelta(seconds=2), "1 s"),
        ({}, timedelta(hours=1), "60 s"),
        ({}, None, "1 min"),
        ({PERIODIC_CHECKPOINT_INTERVAL: "1s"}, timedelta(minutes=5), "1s"),
        ({PERIODIC_CHECKPOINT_INTERVAL: "0 0 * * * ?"}, timedelta(minutes=5), "0 0 * * * ?"),
        ({PERIODIC_CHECKPOINT_INTERVAL: "0"}, timedelta(minutes=5), "60 s"),
        ({PERIODIC_CHECKPOINT_INTERVAL: " "}, timedelta(minutes=5), "60 s"),
        ({PERIODIC_CHECKPOINT_INTERVAL: "often"}, timedelta(minutes=5), "60 s"),
        ({SNAPSHOT_RESOURCE_ENABLED: "true"}, timedelta(minutes=5), "60 s"),
    ],
)
def test_every_flinkdeployment_gets_what_fko_needs_to_report_checkpoints(
    own: dict[str, str], readiness: timedelta | None, interval: str
) -> None:
    injected = fko_configuration(own, readiness)
    assert injected == {SNAPSHOT_RESOURCE_ENABLED: "false", PERIODIC_CHECKPOINT_INTERVAL: interval}


@pytest.mark.parametrize(
    ("count", "before", "now", "after"),
    [
        (0, "RUNNING", "RESTARTING", 1),
        (1, "RESTARTING", "RESTARTING", 1),
        (1, "RESTARTING", "RUNNING", 1),
        (1, "RUNNING", "FAILING", 2),
        (0, None, "RUNNING", 0),
    ],
)
def test_restarts_are_counted_on_transitions(count: int, before: str | None, now: str, after: int) -> None:
    assert count_restarts(count, before, now) == after


def test_a_restart_between_two_looks_is_counted_from_the_update_time() -> None:
    assert count_restarts(0, "RUNNING", "RUNNING", "100", "180") == 1
    assert count_restarts(0, "RUNNING", "RUNNING", "100", "100") == 0
    assert count_restarts(0, "CREATED", "RUNNING", "100", "180") == 0  # the start itself


@pytest.mark.parametrize(
    ("topic", "ready", "why"),
    [
        (None, False, "not created"),
        (
            {
                "metadata": {"generation": 2},
                "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
            },
            False,
            "latest spec",
        ),
        (
            {
                "metadata": {"generation": 2},
                "status": {
                    "observedGeneration": 2,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "NotSupported",
                            "message": "Decreasing partitions",
                        }
                    ],
                },
            },
            False,
            "NotSupported: Decreasing partitions",
        ),
        (
            {
                "metadata": {"generation": 2},
                "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]},
            },
            True,
            "ready",
        ),
    ],
)
def test_kafka_topic_readiness(topic: dict[str, Any] | None, ready: bool, why: str) -> None:
    ok, message = kafka_topic_ready(topic)
    assert ok is ready
    assert why in message


def _changed(path: str, value: Any) -> dict[str, Any]:
    import copy

    fd = copy.deepcopy(FD)
    *parents, leaf = path.split(".")
    node = fd
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return fd


@pytest.mark.parametrize(
    ("path", "value", "wakes"),
    [
        # FKO's rewrites at rest: nothing a decision reads
        ("status.reconciliationStatus.reconciliationTimestamp", 1795280200000, False),
        ("status.jobStatus.checkpointInfo.lastPeriodicCheckpointTimestamp", 1795280200000, False),
        ("status.jobStatus.checkpointInfo.triggerId", "abc", False),
        ("status.jobStatus.savepointInfo.lastPeriodicSavepointTimestamp", 1795280200000, False),
        ("status.taskManager.replicas", 2, False),
        ("metadata.resourceVersion", "999", False),
        # what the job's state and gates are made of
        ("status.jobStatus.state", "RUNNING", True),
        ("status.lifecycleState", "STABLE", True),
        ("status.error", "boom", True),
        ("status.observedGeneration", 4, True),
        ("metadata.generation", 4, True),
        ("metadata.deletionTimestamp", "2026-11-28T20:00:00Z", True),
        ("spec.job.state", "running", True),
        ("status.jobStatus.startTime", "1795280300000", True),
        ("status.jobStatus.updateTime", "1795280300000", True),
        ("status.jobStatus.upgradeSavepointPath", "file:///sp/2", True),
        ("status.jobStatus.savepointInfo.lastSavepoint", {"location": "file:///sp/2", "timeStamp": 2}, True),
        ("status.jobStatus.checkpointInfo.lastCheckpoint", {"timeStamp": 1795280300000}, True),
    ],
)
def test_a_flinkdeployment_event_wakes_its_job_only_when_what_it_reads_changed(
    path: str, value: Any, wakes: bool
) -> None:
    assert (deployment_facts(_changed(path, value)) != deployment_facts(FD)) is wakes


@pytest.mark.parametrize(
    ("changes", "only"),
    [
        ({"status.jobStatus.checkpointInfo.lastCheckpoint": {"timeStamp": 1795280300000}}, True),
        ({}, False),  # nothing moved
        ({"status.jobStatus.state": "FAILED"}, False),
        (
            {
                "status.jobStatus.checkpointInfo.lastCheckpoint": {"timeStamp": 1795280300000},
                "status.error": "boom",
            },
            False,
        ),
    ],
)
def test_a_periodic_checkpoint_alone_is_told_apart(changes: dict[str, Any], only: bool) -> None:
    fd = FD
    for path, value in changes.items():
        fd = _changed(path, value) if fd is FD else _merge(fd, path, value)
    assert only_checkpointed(deployment_facts(FD), deployment_facts(fd)) is only
    assert only_checkpointed(None, deployment_facts(fd)) is False  # first sight: not "only a checkpoint"


def _merge(fd: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    node = fd
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return fd
