"""Two replicas: `kappa run --leader-election LEASE`, as manifests/20-deployment.yaml runs it. Only the
Lease's holder acts; the standby runs no Kopf at all. SIGKILLed, the holder is replaced within TAKEOVER
seconds; stopped cleanly, it hands the Lease over at once; a holder that loses its Lease exits.

The session's operator is cluster-wide and would act too, so it stands aside for this module. Runtime ~60 s.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kappa.adapters.leader import EXIT_LOST_LEASE
from tests.integration.conftest import free_port
from tests.integration.test_rbac import can_i
from tests.integration.testbed import Kubectl, OperatorProcess

# kappa run's defaults, which the manifests ship.
LEASE_DURATION = 15
RENEW_DEADLINE = 10
RETRY_PERIOD = 2
# The stated takeover: the standby saw the last renewal up to one period late and looks once a period, so it
# holds the Lease at most LEASE_DURATION + 2 * RETRY_PERIOD (19 s) after the holder died; then Kopf starts,
# lists and reconciles: a second, or several on a loaded test machine.
LEADERSHIP = LEASE_DURATION + 2 * RETRY_PERIOD
TAKEOVER = LEADERSHIP + 8


def streamjob(readiness: str = "5m") -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": "sessionizer"},
        "spec": {
            "version": "v1",
            "source": {"kafka": {"clusterRef": "events"}, "topics": ["clicks"]},
            "output": {"topic": {"base": "sessions", "partitions": 2}},
            "flink": {
                "image": "kappa-dev/flink-sql-runner:1.20",
                "flinkVersion": "v1_20",
                "sql": ["INSERT INTO `${KAPPA_OUTPUT_TOPIC}` SELECT * FROM clicks"],
            },
            # A spec change the operator answers with status.observedGeneration, and nothing else.
            "upgrade": {"readinessTimeout": readiness},
        },
    }


class Replicas:
    def __init__(self, kubeconfig: Path, logs: Path, admin: Kubectl) -> None:
        self.kubeconfig = kubeconfig
        self.logs = logs
        self.lease = f"kappa-operator-{uuid.uuid4().hex[:6]}"  # in kappa-system, the kubeconfig's namespace
        self.admin = admin.in_namespace("kappa-system")
        self.started: list[OperatorProcess] = []

    def start(self, name: str) -> OperatorProcess:
        replica = OperatorProcess(
            self.kubeconfig,
            self.logs / f"{name}.log",
            health_port=free_port(),
            metrics_port=free_port(),
            args=["--leader-election", self.lease],
        )
        replica.start()
        self.started.append(replica)
        return replica

    def lease_spec(self) -> dict[str, Any]:
        return json.loads(self.admin("get", "lease", self.lease, "-o", "json"))["spec"]  # type: ignore[no-any-return]


def identity(replica: OperatorProcess) -> str:
    assert replica.proc is not None
    return f"{socket.gethostname()}/{replica.proc.pid}"


def wait_log(replica: OperatorProcess, pattern: str, timeout: float) -> float:
    """Seconds until the replica's log matches."""
    start = time.monotonic()
    while not re.search(pattern, replica.log()):
        assert time.monotonic() - start < timeout, f"no {pattern!r} in {replica.log_path} after {timeout}s"
        time.sleep(0.1)
    return time.monotonic() - start


def health(replica: OperatorProcess) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{replica.health_port}/healthz", timeout=5) as response:
        return json.loads(response.read() or b"{}")  # type: ignore[no-any-return]


def observed(kubectl: Kubectl, generation: int, timeout: float) -> float:
    """Seconds until the operator has answered this generation of the StreamJob."""
    start = time.monotonic()
    kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: o.get("status", {}).get("observedGeneration") == generation,
        timeout=timeout,
        what=f"observedGeneration {generation}",
    )
    return time.monotonic() - start


@pytest.fixture(scope="module")
def replicas(
    kappa_operator: OperatorProcess,
    operator_kubeconfig: Path,
    admin: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    kappa_operator.stop()
    both = Replicas(operator_kubeconfig, tmp_path_factory.mktemp("replicas"), admin)
    try:
        yield both
    finally:
        for replica in both.started:
            replica.stop()
        both.admin.run("delete", "lease", both.lease, check=False)
        kappa_operator.start()
        print(f"replica logs: {both.logs}")


def test_one_replica_acts_and_the_other_takes_over_when_it_dies(replicas: Replicas, kubectl: Kubectl) -> None:
    ns = kubectl.namespace
    a = replicas.start("a")
    wait_log(a, "Leading as", 30)
    b = replicas.start("b")
    wait_log(b, rf"Standby as .* held by {re.escape(identity(a))}", 30)

    # Only the holder acts: the StreamJob is A's, B runs no Kopf and touched nothing.
    kubectl.apply(streamjob())
    observed(kubectl, 1, 30)
    assert f"StreamJob {ns}/sessionizer" in a.log()
    assert "sessionizer" not in b.log() and "kopf" not in b.log()
    assert health(b)["role"] == "standby" and health(b)["holder"] == identity(a)
    assert (a.metric("kappa_leader"), b.metric("kappa_leader")) == (1, 0)
    assert replicas.lease_spec()["holderIdentity"] == identity(a)

    # A dies mid-flight; a change made at that moment waits for B.
    a.kill()
    died = time.monotonic()
    kubectl.apply(streamjob(readiness="6m"))
    wait_log(b, "Leading as", LEADERSHIP + 10)
    leading = time.monotonic() - died
    observed(kubectl, 2, TAKEOVER + 10)
    takeover = time.monotonic() - died
    print(
        f"after SIGKILL: B holds the Lease after {leading:.1f}s (bound {LEADERSHIP}s), "
        f"acts after {takeover:.1f}s (bound {TAKEOVER}s)"
    )
    assert leading <= LEADERSHIP + 0.5 and takeover <= TAKEOVER
    # Nobody acted while A's Lease could still be valid: B waited for it to run out.
    assert takeover >= LEASE_DURATION - RETRY_PERIOD
    lease = replicas.lease_spec()
    assert lease["holderIdentity"] == identity(b) and lease["leaseTransitions"] == 1
    assert b.metric("kappa_leader") == 1

    # A clean stop (a rolling update) releases the Lease: the standby takes it at its next look.
    c = replicas.start("c")
    wait_log(c, rf"Standby as .* held by {re.escape(identity(b))}", 30)
    assert b.proc is not None
    b.proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    kubectl.apply(streamjob(readiness="7m"))
    observed(kubectl, 3, TAKEOVER)
    handover = time.monotonic() - stopped
    print(f"handover after SIGTERM: {handover:.1f}s")
    assert b.proc.wait(20) == 0
    assert "Released the Lease" in b.log()
    assert handover < LEASE_DURATION - RETRY_PERIOD  # it did not wait for the Lease to run out
    assert replicas.lease_spec()["holderIdentity"] == identity(c)


def test_a_leader_that_loses_its_lease_exits(replicas: Replicas) -> None:
    for replica in replicas.started:
        replica.stop()  # a holder left by the test before releases the Lease
    d = replicas.start("d")
    wait_log(d, "Leading as", 30)
    # Someone else holds the Lease now (as after a partition that outlasted the Lease): D must stop acting.
    replicas.admin(
        "patch", "lease", replicas.lease, "--type=merge", "-p", '{"spec":{"holderIdentity":"someone-else"}}'
    )
    stolen = time.monotonic()
    assert d.proc is not None
    code = d.proc.wait(RENEW_DEADLINE + 2 * RETRY_PERIOD + 5)
    print(f"a leader whose Lease was taken exited after {time.monotonic() - stolen:.1f}s")
    assert code == EXIT_LOST_LEASE
    assert "Lost leadership" in d.log()


def test_the_operator_may_take_and_renew_its_lease_but_not_delete_it(operator_kubeconfig: Path) -> None:
    own = Kubectl(operator_kubeconfig, "kappa-system")
    assert all(can_i(own, verb, "coordination.k8s.io", "leases", "") for verb in ("get", "create", "update"))
    assert not can_i(own, "delete", "coordination.k8s.io", "leases", "")
