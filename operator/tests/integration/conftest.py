"""Session: a real control plane, the CRDs, the operator under the shipped RBAC. Test: a namespace."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kappa.adapters.kafka.admin import KafkaAdmin
from tests.doubles.fixtures import (  # noqa: F401
    fake_fko,
    fake_pipeline,
    fake_strimzi,
    fko,
    pipeline,
    strimzi,
    upstream_crds,
)
from tests.integration.shop import shop  # noqa: F401  (a fixture of the replay stories)
from tests.integration.testbed import ROOT, KafkaTestbed, Kubectl, OperatorProcess, started_service

CONTROLPLANE = ROOT / "testbed" / "controlplane.sh"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _demo_operator_running() -> bool:
    """`make run` leaves its operator running (cluster-wide, on the same control plane) until `make down`."""
    cache = Path(os.environ.get("KAPPA_CACHE") or Path.home() / ".cache" / "kappa-operator")
    pidfile = Path(os.environ.get("KAPPA_TESTBED_DIR") or cache / "testbed") / "demo" / "operator.pid"
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="session")
def control_plane() -> Iterator[Path]:
    """A running kube-apiserver with etcd and the garbage collector."""
    if _demo_operator_running():
        pytest.exit(
            "the operator of `make run` is running on the same control plane and would act on the "
            "tests' resources too: `make down` first",
            returncode=2,
        )
    for kubeconfig in started_service(CONTROLPLANE, "the control plane", 1800):
        yield Path(kubeconfig)


@pytest.fixture(scope="session")
def admin(control_plane: Path) -> Kubectl:
    return Kubectl(control_plane)


@pytest.fixture(scope="session")
def crds(admin: Kubectl) -> list[str]:
    admin(
        "apply",
        "--server-side",
        "--field-manager=kappa-install",
        "--force-conflicts",
        "-f",
        str(ROOT / "manifests" / "crds"),
    )
    names = [f"{p}.kappa.dev" for p in ("streamjobs", "replayruns", "materializedviews")]
    admin("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
    return names


@pytest.fixture(scope="session")
def operator_kubeconfig(admin: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig with the token of the operator's ServiceAccount, bound to manifests/10-rbac.yaml."""
    out = tmp_path_factory.mktemp("operator") / "operator.kubeconfig"
    subprocess.run(
        ["bash", str(ROOT / "testbed" / "operator-kubeconfig.sh"), str(admin.kubeconfig), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


@pytest.fixture(scope="session")
def kappa_operator(
    crds: list[str],
    upstream_crds: object,  # noqa: F811 (the fixture, imported above)
    operator_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """`kappa run` under the shipped RBAC, started once FKO's and Strimzi's CRDs are installed."""
    log = tmp_path_factory.mktemp("operator-log") / "operator.log"
    # A savepoint history of 3 (24 by default), so that a story goes beyond it in a few upgrades. In this
    # process's environment, so that every restart of an operator in the session keeps it.
    os.environ.setdefault("KAPPA_SAVEPOINT_HISTORY", "3")
    operator = OperatorProcess(operator_kubeconfig, log, health_port=free_port(), metrics_port=free_port())
    operator.start()
    yield operator
    operator.stop()
    print(f"operator log: {log}")


@pytest.fixture
def namespace(admin: Kubectl, crds: list[str]) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    admin("create", "namespace", name)
    yield name
    admin.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kubectl(admin: Kubectl, namespace: str) -> Kubectl:
    """kubectl as a user (admin) in this test's namespace."""
    return admin.in_namespace(namespace)


KAFKA = ROOT / "testbed" / "kafka.sh"


def free_port() -> int:
    """A port nobody listens on now: two test sessions on one machine must not share the operator's ports."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real single-node Kafka (KRaft) on loopback."""
    yield from started_service(KAFKA, "Kafka", 1200)


@pytest.fixture
def kafka_admin(kafka_bootstrap: str) -> KafkaAdmin:
    return KafkaAdmin(kafka_bootstrap)


@pytest.fixture
def kafka(kafka_bootstrap: str, kafka_admin: KafkaAdmin) -> KafkaTestbed:
    return KafkaTestbed(kafka_bootstrap, kafka_admin)


POSTGRES = ROOT / "testbed" / "postgres.sh"


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A private PostgreSQL on loopback."""
    yield from started_service(POSTGRES, "PostgreSQL", 600)


FLINK = ROOT / "testbed" / "flink.sh"


@pytest.fixture(scope="session")
def flink_url() -> Iterator[str]:
    """A real Flink 2.3 session cluster (JobManager + one TaskManager, 2 slots) and its SQL runner jar."""
    subprocess.run(["bash", str(FLINK), "runner-jar"], check=True, capture_output=True, timeout=900)
    yield from started_service(FLINK, "Flink", 900)
