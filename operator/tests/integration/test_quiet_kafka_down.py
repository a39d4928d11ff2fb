"""With Kafka down, an idle operator says so once: a few log lines, a condition, one Warning event (a series),
not librdkafka's ten `Connection refused` lines a second."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.integration.conftest import free_port
from tests.integration.testbed import ROOT, Kubectl, OperatorProcess, conditions

IDLE = 60.0


def _job_at(bootstrap: str) -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "03-streamjob-sessionizer.yaml").read_text())
    job["spec"]["flink"]["flinkVersion"] = "v1_20"  # what the test bed's FKO 1.10 CRD accepts
    job["spec"]["source"]["kafka"]["bootstrapServers"] = bootstrap
    return job


@pytest.fixture(scope="module")
def kafka_down(kappa_operator: OperatorProcess, admin: Kubectl) -> Iterator[tuple[Kubectl, str, int]]:
    """A StreamJob whose Kafka is a closed port, left alone for a minute; (kubectl, bootstrap, log offset)."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    admin("create", "namespace", namespace)
    kubectl = admin.in_namespace(namespace)
    bootstrap = f"127.0.0.1:{free_port()}"  # nobody listens: connection refused, at once and forever
    start = len(kappa_operator.log())
    kubectl.apply(_job_at(bootstrap))
    time.sleep(IDLE)
    yield kubectl, bootstrap, start
    admin.run("delete", "namespace", namespace, "--wait=false", check=False)


def _warnings(kubectl: Kubectl, name: str) -> list[dict[str, Any]]:
    out = kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
    return [e for e in json.loads(out)["items"] if e["type"] == "Warning"]


def test_the_log_says_it_once_not_per_retry(
    kafka_down: tuple[Kubectl, str, int], kappa_operator: OperatorProcess
) -> None:
    _, bootstrap, start = kafka_down
    lines = [line for line in kappa_operator.log()[start:].splitlines() if bootstrap in line]
    # "Kafka at … unreachable" and "lag poll of … failing": one each, whatever the retries.
    assert len(lines) <= 4, "\n".join(lines[:20])
    assert any("unreachable" in line for line in lines), "\n".join(lines)
    assert not any("Connection refused" in line and "unreachable" not in line for line in lines)


def test_each_warning_is_one_event_with_its_count(kafka_down: tuple[Kubectl, str, int]) -> None:
    kubectl, _, _ = kafka_down
    warnings = _warnings(kubectl, "sessionizer")
    reasons = [e["reason"] for e in warnings]
    assert len(reasons) == len(set(reasons)), json.dumps(warnings, indent=1)


def test_the_condition_and_one_event_say_what_is_wrong(kafka_down: tuple[Kubectl, str, int]) -> None:
    kubectl, bootstrap, _ = kafka_down
    job = kubectl.get("sj", "sessionizer")
    reachable = conditions(job).get("KafkaReachable") or {}
    assert reachable.get("status") == "False", json.dumps(job.get("status"), indent=1)
    assert reachable["reason"] == "KafkaUnreachable"
    assert f"Kafka at {bootstrap} unreachable" in reachable["message"]
    events = [e for e in _warnings(kubectl, "sessionizer") if e["reason"] == "KafkaUnreachable"]
    assert len(events) == 1, json.dumps(events, indent=1)
    assert events[0]["count"] >= 2  # the lag is polled every second here: one series, counted
