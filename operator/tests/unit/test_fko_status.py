"""Reading FKO and Strimzi status as the real operators write it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kappa.machines.fko import count_restarts, deployment_view, kafka_topic_ready

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
def test_kafka_topic_readiness(topic: dict | None, ready: bool, why: str) -> None:
    ok, message = kafka_topic_ready(topic)
    assert ok is ready
    assert why in message
