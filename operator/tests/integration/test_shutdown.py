"""Nothing waits for ever on a peer that does not answer: SIGTERM is honoured at once even while the lag poll
waits on a Kafka cluster that hangs (a round could hold the stop for up to 35 s, and Kubernetes sends SIGKILL
after 30 s by default), and a Kubernetes request to an API server that hangs ends at its timeout."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kappa.adapters import kube as kube_adapter
from kappa.controllers.lag import STOP_WITHIN, LagTracking, stop_lag_tracking
from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.kube_watch import api_client
from tests.integration.conftest import free_port
from tests.integration.test_streamjob import streamjob
from tests.integration.testbed import KafkaTestbed, Kubectl, OperatorProcess


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A port whose connections the kernel accepts (the backlog) and no one ever answers: every request
    waits out its timeout, as on a broker that hangs or a firewall that drops replies."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_stopping_does_not_wait_out_a_lag_round_on_a_cluster_that_does_not_answer(silent_broker: str) -> None:
    async def story() -> tuple[float, bool]:
        tracking = LagTracking(interval=1.0)
        tracking.monitor(silent_broker).track("g", ["clicks"], labels={"namespace": "ns", "job": "j"})
        memo: Any = SimpleNamespace(lag=tracking, lag_task=asyncio.create_task(tracking.run()))
        await asyncio.sleep(1.0)  # the first round is waiting on the silent broker
        assert not memo.lag_task.done()
        started = time.monotonic()
        await stop_lag_tracking(memo=memo)
        return time.monotonic() - started, memo.lag_task.done()

    took, done = asyncio.run(asyncio.wait_for(story(), timeout=60))
    assert done
    assert took < STOP_WITHIN + 1.0, f"the stop waited {took:.1f} s for the lag round"
    print(f"\nstopped in {took:.1f} s")


def test_a_kubernetes_request_to_an_api_server_that_hangs_ends_at_its_timeout(
    control_plane: Path, silent_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a timeout the call, and the worker thread it holds, waited for ever: six such calls took every
    thread of the pool that all Kubernetes calls share."""
    monkeypatch.setattr(kube_adapter, "REQUEST_TIMEOUT", 1.0)
    kube = kube_adapter.Kube(api_client(control_plane))
    assert asyncio.run(kube.get("v1", "Namespace", "", "default")) is not None  # discovery is cached now
    kube._dynamic.client.configuration.host = f"http://{silent_broker}"  # the same server, hanging

    async def story() -> float:
        started = time.monotonic()
        with pytest.raises(Exception, match=r"(?i)timed? ?out"):
            await kube.get("v1", "Namespace", "", "default")
        return time.monotonic() - started

    took = asyncio.run(asyncio.wait_for(story(), timeout=30))
    assert took < 5, f"the request took {took:.1f} s"


def test_a_kafka_cluster_that_hangs_does_not_slow_the_lag_poll_of_another(
    silent_broker: str, kafka: KafkaTestbed
) -> None:
    """The clusters were polled in rounds, each round waiting for every cluster: one that hangs (30 s per
    request) made every other cluster's lag, and the StreamJobs' Lag column, 30 s old and more."""
    topic = kafka.topic(partitions=1)
    kafka.produce(topic, [(0, int(time.time() * 1000))])

    async def story() -> list[float]:
        tracking = LagTracking(interval=0.5)
        tracking.monitor(silent_broker).track("g-hangs", ["clicks"])
        tracking.track(kafka.bootstrap, "g-answers", [topic], {"namespace": "ns", "job": "j"})
        task = asyncio.create_task(tracking.run())
        polled: list[float] = []
        for _ in range(16):  # 8 s, 16 intervals
            await asyncio.sleep(0.5)
            latest = tracking.latest("g-answers")
            if latest is not None and latest.polled_at not in polled:
                polled.append(latest.polled_at)
        tracking.stop.set()
        await asyncio.wait_for(task, timeout=STOP_WITHIN + 1)
        return polled

    polled = asyncio.run(asyncio.wait_for(story(), timeout=60))
    assert len(polled) >= 8, f"the answering cluster was polled {len(polled)} times in 8 s"
    print(f"\nthe answering cluster polled {len(polled)} times in 8 s")


def test_sigterm_stops_an_operator_whose_kafka_hangs_within_seconds(
    control_plane: Path,
    kubectl: Kubectl,
    fko: FakeFlinkOperator,
    silent_broker: str,
    tmp_path: Path,
) -> None:
    """Its own operator (only this namespace; the admin's kubeconfig, as the operator's RBAC does not let a
    namespaced operator list namespaces, which Kopf does) with a StreamJob whose Kafka accepts connections
    and never answers: the lag poll and the reconciles wait on it. Stopped, the interpreter joined every
    worker thread still waiting on that cluster, which each waited out its timeout."""
    job = streamjob()
    job["spec"]["source"]["kafka"] = {"bootstrapServers": silent_broker}
    operator = OperatorProcess(
        control_plane,
        tmp_path / "operator.log",
        health_port=free_port(),
        metrics_port=free_port(),
        args=["--namespace", str(kubectl.namespace)],
    )
    operator.start()
    try:
        kubectl.apply(job)
        time.sleep(8)  # a look and a lag poll are waiting on the silent cluster
        assert operator.proc is not None and operator.exited() is None
        assert f"{kubectl.namespace}/sessionizer" in operator.log(), "the operator never looked at the job"
        started = time.monotonic()
        operator.proc.send_signal(signal.SIGTERM)
        code = operator.proc.wait(timeout=60)
        took = time.monotonic() - started
    finally:
        operator.stop()
    assert code == 0, operator.log()[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f} s; see {operator.log_path}"
    print(f"\nstopped in {took:.1f} s")
