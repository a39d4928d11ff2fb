"""Nothing waits for ever on a peer that does not answer: SIGTERM is honoured at once even while the lag poll
waits on a Kafka cluster that hangs (a round could hold the stop for up to 35 s, and Kubernetes sends SIGKILL
after 30 s by default), and a Kubernetes request to an API server that hangs ends at its timeout."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kappa.adapters import kube as kube_adapter
from kappa.controllers.lag import STOP_WITHIN, LagTracking, stop_lag_tracking
from tests.doubles.kube_watch import api_client


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
