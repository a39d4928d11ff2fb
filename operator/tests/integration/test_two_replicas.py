"""Two replicas: `kappa run --leader-election LEASE`, as manifests/20-deployment.yaml runs it. Only the
Lease's holder acts; the standby runs no Kopf at all. SIGKILLed, the holder is replaced within TAKEOVER
seconds; stopped cleanly, it hands the Lease over at once; a holder that loses its Lease exits.

The session's operator is cluster-wide and would act too, so it stands aside meanwhile. Runtime ~45 s idle
(the takeover waits 15 s for the dead holder's Lease, the lost Lease 10 s), ~2 min on a loaded machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import statistics
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.config import new_client_from_config

from kappa.adapters.leader import EXIT_LOST_LEASE, LeaderElection
from tests.integration.conftest import free_port
from tests.integration.test_rbac import can_i
from tests.integration.testbed import Kubectl, OperatorProcess

# kappa run's defaults, which the manifests ship.
LEASE_DURATION = 15
RENEW_DEADLINE = 10
RETRY_PERIOD = 2
# The stated takeover: the standby saw the last renewal up to one period late and looks once a period, so it
# holds the Lease at most LEASE_DURATION + 2 * RETRY_PERIOD (19 s) after the holder died; then Kopf starts,
# lists and reconciles: a second or two, but up to 11 s measured on 2 cores at load 50.
LEADERSHIP = LEASE_DURATION + 2 * RETRY_PERIOD
TAKEOVER = LEADERSHIP + 15
# A period is RETRY_PERIOD plus the time of the look itself: up to a second each on a loaded machine.
SLACK = 2


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


@pytest.fixture
def replicas(
    kappa_operator: OperatorProcess,
    operator_kubeconfig: Path,
    admin: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    kappa_operator.stop()
    replicas = Replicas(operator_kubeconfig, tmp_path_factory.mktemp("replicas"), admin)
    try:
        yield replicas
    finally:
        for replica in replicas.started:
            replica.stop()
        replicas.admin.run("delete", "lease", replicas.lease, check=False)
        kappa_operator.start()
        print(f"replica logs: {replicas.logs}")


def two_replicas(replicas: Replicas, *names: str) -> tuple[OperatorProcess, OperatorProcess]:
    """Both start at once; either may win the Lease. Returns (leader, standby) once the standby saw it."""
    with ThreadPoolExecutor() as pool:
        a, b = pool.map(replicas.start, names)
    deadline = time.monotonic() + 30
    while not any("Leading as" in r.log() for r in (a, b)):
        assert time.monotonic() < deadline, "neither replica leads"
        time.sleep(0.1)
    leader, standby = (a, b) if "Leading as" in a.log() else (b, a)
    wait_log(standby, rf"Standby as .* held by {re.escape(identity(leader))}", 30)
    return leader, standby


def kill_the_leader(
    replicas: Replicas,
    kubectl: Kubectl,
    leader: OperatorProcess,
    standby: OperatorProcess,
    generation: int,
    replacement: str,
) -> tuple[float, float, OperatorProcess]:
    """SIGKILL the leader and change the StreamJob at that moment; meanwhile a replacement replica starts, as
    the Deployment replaces a lost pod. Returns the seconds until the standby leads and until it has acted,
    and the replacement."""
    leader.kill()
    died = time.monotonic()
    kubectl.apply(streamjob(readiness=f"{generation + 4}m"))
    with ThreadPoolExecutor() as pool:
        started = pool.submit(replicas.start, replacement)
        wait_log(standby, "Leading as", LEADERSHIP + 10)
        leading = time.monotonic() - died
        observed(kubectl, generation, TAKEOVER + 10)
        acted = time.monotonic() - died
        return leading, acted, started.result()


def test_one_replica_acts_and_another_takes_over_when_it_dies(replicas: Replicas, kubectl: Kubectl) -> None:
    ns = kubectl.namespace
    leader, standby = two_replicas(replicas, "a", "b")

    # Only the holder acts: the StreamJob is the leader's; the standby runs no Kopf and touched nothing.
    kubectl.apply(streamjob())
    observed(kubectl, 1, 30)
    wait_log(leader, f"StreamJob {ns}/sessionizer", 10)  # its event, logged
    assert "sessionizer" not in standby.log() and "kopf" not in standby.log()
    assert health(standby)["role"] == "standby" and health(standby)["holder"] == identity(leader)
    assert (leader.metric("kappa_leader"), standby.metric("kappa_leader")) == (1, 0)
    assert replicas.lease_spec()["holderIdentity"] == identity(leader)

    # The leader dies mid-flight, and a change is made at that moment: it waits for the standby.
    leading, takeover, c = kill_the_leader(replicas, kubectl, leader, standby, 2, "c")
    print(
        f"after SIGKILL: the standby holds the Lease after {leading:.1f}s (bound {LEADERSHIP}s), "
        f"acts after {takeover:.1f}s (bound {TAKEOVER}s)"
    )
    assert leading <= LEADERSHIP + SLACK and takeover <= TAKEOVER
    # Nobody acted while the dead leader's Lease could still be valid: the standby waited for it to run out.
    assert takeover >= LEASE_DURATION - RETRY_PERIOD
    lease = replicas.lease_spec()
    assert lease["holderIdentity"] == identity(standby) and lease["leaseTransitions"] == 1
    assert standby.metric("kappa_leader") == 1

    # A clean stop (a rolling update) releases the Lease: the new standby takes it at its next look.
    b = standby
    wait_log(c, rf"Standby as .* held by {re.escape(identity(b))}", 30)
    assert b.proc is not None
    b.proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    kubectl.apply(streamjob(readiness="1h"))
    wait_log(c, "Leading as", LEADERSHIP + 10)
    handover = time.monotonic() - stopped
    observed(kubectl, 3, TAKEOVER)
    acted = time.monotonic() - stopped
    print(f"after SIGTERM: the standby holds the Lease after {handover:.1f}s, acts after {acted:.1f}s")
    assert b.proc.wait(20) == 0
    assert "Released the Lease" in b.log()
    assert handover < LEASE_DURATION - RETRY_PERIOD  # it did not wait for the Lease to run out
    assert replicas.lease_spec()["holderIdentity"] == identity(c)

    # Someone else holds the Lease now (as after a partition that outlasted it): C must stop acting.
    replicas.admin(
        "patch", "lease", replicas.lease, "--type=merge", "-p", '{"spec":{"holderIdentity":"someone-else"}}'
    )
    stolen = time.monotonic()
    assert c.proc is not None
    code = c.proc.wait(RETRY_PERIOD + 5)  # at its next renewal
    print(f"a leader whose Lease was taken exited after {time.monotonic() - stolen:.1f}s with {code}")
    assert code == EXIT_LOST_LEASE
    assert "Lost leadership" in c.log()


RUNS = int(os.environ.get("KAPPA_TAKEOVER_RUNS") or 0)


@pytest.mark.skipif(not RUNS, reason="a measurement: KAPPA_TAKEOVER_RUNS=N")
@pytest.mark.timeout(120 + 40 * RUNS)
def test_takeover_figures(replicas: Replicas, kubectl: Kubectl) -> None:
    """KAPPA_TAKEOVER_RUNS=N: N leaders SIGKILLed in a row, each replaced; ~20 s a run."""
    leader, standby = two_replicas(replicas, "r0", "r1")
    kubectl.apply(streamjob())
    observed(kubectl, 1, 30)
    figures = []
    for run in range(RUNS):
        wait_log(standby, rf"Standby as .* held by {re.escape(identity(leader))}", 30)
        leading, acted, new = kill_the_leader(replicas, kubectl, leader, standby, run + 2, f"r{run + 2}")
        figures.append((leading, acted))
        print(f"run {run + 1}: leads after {leading:.1f}s, acts after {acted:.1f}s")
        leader, standby = standby, new
    for what, values in (("leads", [f[0] for f in figures]), ("acts", [f[1] for f in figures])):
        print(
            f"{what} after SIGKILL over {len(values)} runs: min {min(values):.1f}s, "
            f"median {statistics.median(values):.1f}s, max {max(values):.1f}s"
        )
    assert all(LEASE_DURATION - RETRY_PERIOD <= acted <= TAKEOVER for _, acted in figures)
    assert all(leading <= LEADERSHIP + SLACK for leading, _ in figures)


def test_the_operator_may_take_and_renew_its_lease_but_not_delete_it(operator_kubeconfig: Path) -> None:
    own = Kubectl(operator_kubeconfig, "kappa-system")
    assert all(can_i(own, verb, "coordination.k8s.io", "leases", "") for verb in ("get", "create", "update"))
    assert not can_i(own, "delete", "coordination.k8s.io", "leases", "")


class Relay:
    """A TCP relay to the API server that can be cut: every connection through it closes, and no new one opens
    (what a leader sees in a network partition)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            self.sockets += [down, up]
            for src, dst in ((down, up), (up, down)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_a_leader_that_cannot_reach_the_api_server_stops_before_its_lease_runs_out(
    operator_kubeconfig: Path, admin: Kubectl, tmp_path: Path
) -> None:
    """In process, with short timings: once leading, the leader's way to the API server is cut; it must give
    up within the renew deadline, before a standby could see its Lease run out."""
    lease = f"kappa-operator-{uuid.uuid4().hex[:6]}"
    kubeconfig = yaml.safe_load(operator_kubeconfig.read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    upstream = urllib.parse.urlsplit(cluster["server"])
    relay = Relay((upstream.hostname or "127.0.0.1", upstream.port or 443))
    cluster["server"] = f"https://127.0.0.1:{relay.port}"  # the loader resets a client's host from its file
    through_relay = tmp_path / "through-relay.kubeconfig"
    through_relay.write_text(yaml.safe_dump(kubeconfig))
    api = new_client_from_config(str(through_relay))
    exits: list[tuple[float, int]] = []
    election = LeaderElection(
        f"kappa-system/{lease}",
        lease_duration=5,
        renew_deadline=3,
        retry_period=1,
        api=api,
        exit=lambda code: exits.append((time.monotonic(), code)),
    )
    try:
        election.wait_until_leading()
        time.sleep(1.5)  # a renewal or two through the relay
        assert admin.in_namespace("kappa-system").run("get", "lease", lease).returncode == 0
        relay.cut()
        cut = time.monotonic()
        while not exits and time.monotonic() < cut + 10:
            time.sleep(0.05)
        assert exits, "the leader went on without renewing its Lease"
        print(f"cut off from the API server, the leader gave up after {exits[0][0] - cut:.1f}s")
        assert exits[0][1] == EXIT_LOST_LEASE
        assert exits[0][0] - cut < 5 - 1  # before a standby could see the Lease expire
    finally:
        relay.cut()
        admin.in_namespace("kappa-system").run("delete", "lease", lease, check=False)
