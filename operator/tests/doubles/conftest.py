"""The test bed for the doubles' own tests: a real API server and Kafka, each started here only if it was not
already up (and then stopped here), and a fresh namespace per test. Mirrors tests/integration/conftest.py."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from tests.doubles.fixtures import ROOT, fake_fko, fake_strimzi, fko, strimzi, upstream_crds
from tests.doubles.kube_watch import api_client

__all__ = ["fake_fko", "fake_strimzi", "fko", "strimzi", "upstream_crds"]

CONTROLPLANE = ROOT / "testbed" / "controlplane.sh"
KAFKA = ROOT / "testbed" / "kafka.sh"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/doubles/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@contextmanager
def _brought_up(script: Path, what: str, timeout: float) -> Iterator[str]:
    """What `script up` prints last (the kubeconfig, the bootstrap address); `down` afterwards only if this
    started it, so a test bed someone else is using stays up."""
    was_up = subprocess.run(["bash", str(script), "status"], capture_output=True).returncode == 0
    up = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=timeout)
    if up.returncode != 0:
        if not was_up:
            subprocess.run(["bash", str(script), "down"], capture_output=True, timeout=120)
        pytest.fail(f"{what} did not start:\n{up.stderr[-4000:]}")
    yield up.stdout.strip().splitlines()[-1]
    if not was_up and not os.environ.get("KAPPA_KEEP_TESTBED"):
        subprocess.run(["bash", str(script), "down"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[Path]:
    """The admin kubeconfig of a running kube-apiserver."""
    with _brought_up(CONTROLPLANE, "control plane", 1800) as kubeconfig:
        yield Path(kubeconfig)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real single-node Kafka (KRaft) on loopback."""
    with _brought_up(KAFKA, "Kafka", 1200) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def core(control_plane: Path) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(control_plane))


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace; deleting it afterwards also deletes its KafkaTopics' topics (through the double)."""
    name = f"d-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
