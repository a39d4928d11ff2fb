"""A dead operator is visible: by /healthz when a background loop it depends on died, and by its exit code
and faulthandler's stacks in its log when a fatal signal killed it (the librdkafka segfault of issue 13 left
only a kernel line and a supervisor's exit code).

Runtime: about 35 s (one operator start on the session's control plane, watching only its namespace, and
Kopf's 10 s probe cache).
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.integration.conftest import free_port
from tests.integration.testbed import OperatorProcess


def healthz(operator: OperatorProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5
        ) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _operator(kubeconfig: Path, tmp_path: Path, namespace: str) -> OperatorProcess:
    return OperatorProcess(
        kubeconfig,
        tmp_path / "operator.log",
        health_port=free_port(),
        metrics_port=free_port(),
        args=["--namespace", namespace],  # not the session operator's: acts on nothing else
    )


def test_healthz_fails_once_the_lag_poll_died_and_a_fatal_signal_leaves_an_exit_code_and_stacks(
    operator_kubeconfig: Path, crds: list[str], namespace: str, tmp_path: Path
) -> None:
    """One operator for both (a start costs ~15 s here): first its lag poll dies, then the whole process."""
    armed = tmp_path / "failpoints"
    armed.write_text("")
    operator = _operator(operator_kubeconfig, tmp_path, namespace)
    operator.start(env={"KAPPA_FAILPOINTS_FILE": str(armed)})
    try:
        status, body = healthz(operator)
        assert status == 200, body
        assert json.loads(body)["background_loops"] == "running"

        armed.write_text("lag-poll")  # the lag poll's loop raises, as a bug in it would end it
        deadline = time.monotonic() + 30  # a round a second (--lag-interval 1); Kopf caches probes for 10 s
        while (status := healthz(operator)[0]) == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status == 500, f"/healthz still {status} 30 s after the lag poll died; see {operator.log_path}"
        assert "the lag poll ended: failpoint lag-poll" in operator.log()
        assert operator.exited() is None  # alive but unhealthy: the liveness probe restarts it

        assert operator.proc is not None
        os.kill(operator.proc.pid, signal.SIGSEGV)  # as a segfault would, in a thread that does not block it
        code = operator.proc.wait(timeout=30)
    finally:
        operator.stop()
    assert code == -signal.SIGSEGV  # a shell or supervise.sh reports 139
    log = operator.log()
    assert "Fatal Python error: Segmentation fault" in log, log[-3000:]
    assert "Current thread" in log and "most recent call first" in log, log[-3000:]
