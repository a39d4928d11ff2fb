"""A StreamJob is looked at when something about it changes, not on a fixed timer: with looks 30 s apart
while something moves (the test suite's operator looks every second), a job still answers its deployment's
changes and a user's request within seconds, because the watch events of its children and its own
annotations wake it. At rest its status is left alone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.strimzi import FakeTopicOperator
from tests.integration.conftest import free_port
from tests.integration.test_streamjob import flinkdeployments, ready, streamjob, wait
from tests.integration.testbed import Kubectl, OperatorProcess

SLOW = 30  # seconds between looks while something moves: far longer than any wait below


@pytest.fixture
def slow_operator(
    kappa_operator: OperatorProcess, control_plane: Path, kubectl: Kubectl, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The suite's operator stands aside (it looks every second); this one watches only the test's namespace
    (with the admin's kubeconfig: a namespaced operator lists namespaces, which the shipped RBAC does not
    let it do), and looks every 30 s while something moves, every 10 minutes at rest."""
    kappa_operator.stop()
    operator = OperatorProcess(
        control_plane,
        tmp_path / "operator.log",
        health_port=free_port(),
        metrics_port=free_port(),
        args=["--namespace", str(kubectl.namespace), "--reconcile-interval", str(SLOW)],
    )
    operator.start(env={"KAPPA_RESYNC_INTERVAL": "600"})
    try:
        yield operator
    finally:
        operator.stop()
        kappa_operator.start()


def seconds_until(what: str, predicate: Any, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_streamjob_answers_its_deployment_and_its_requests_at_once_and_rests_otherwise(
    slow_operator: OperatorProcess, kubectl: Kubectl, fko: FakeFlinkOperator, strimzi: FakeTopicOperator
) -> None:
    ns = str(kubectl.namespace)
    fko.start_delay("sessionizer-v1", 4)  # RUNNING 4 s after the deployment: after the first look
    kubectl.apply(streamjob("v1"))
    seconds_until("v1's FlinkDeployment", lambda: "sessionizer-v1" in flinkdeployments(kubectl), 30)
    seconds_until("v1 RUNNING", lambda: fko.state(ns, "sessionizer-v1") == "RUNNING", 30)
    # Ready needs RUNNING seen, then stableFor (4 s) of it: two looks the deployment's events and the
    # upgrade machine's requeue_after bring, not the 30 s interval.
    after_running = time.monotonic()
    wait(kubectl, "v1 Ready", ready, timeout=SLOW - 5)
    became_ready = time.monotonic() - after_running

    # A change of the deployment alone (FKO restarts the job) shows in the StreamJob's status.
    fko.crash_loop("sessionizer-v1", every=1.0, restart_delay=0.5)
    seen_restart = seconds_until(
        "a restart in status.deployments",
        lambda: any(
            d.get("restarts", 0) > 0 for d in kubectl.get("sj", "sessionizer")["status"]["deployments"]
        ),
        SLOW - 5,
    )
    fko.crash_loop("sessionizer-v1", enabled=False)
    wait(kubectl, "v1 RUNNING again", lambda o: o["status"]["deployments"][0].get("jobState") == "RUNNING")

    # A request (an annotation, no spec change) is echoed in status.handledRequests.
    kubectl("annotate", "sj", "sessionizer", "kappa.dev/rollback=r1")
    handled = seconds_until(
        "the rollback request echoed",
        lambda: kubectl.get("sj", "sessionizer")["status"].get("handledRequests", {}).get("rollback") == "r1",
        SLOW - 5,
    )

    # At rest its status is not written (the double's deployment still changes: Flink's checkpoints).
    time.sleep(3)
    before = kubectl.get("sj", "sessionizer")["metadata"]["resourceVersion"]
    time.sleep(10)
    assert kubectl.get("sj", "sessionizer")["metadata"]["resourceVersion"] == before
    print(
        f"\nlooks {SLOW} s apart: Ready {became_ready:.1f} s after RUNNING (stableFor 4 s), a restart "
        f"seen in {seen_restart:.1f} s, a request echoed in {handled:.1f} s"
    )
