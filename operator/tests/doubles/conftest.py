"""The test bed for the doubles' own tests: a real API server, Kafka and PostgreSQL, each started here only if
it was not already up (and then stopped here), and a fresh namespace per test. Mirrors
tests/integration/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.doubles.fixtures import (
    ROOT,
    fake_fko,
    fake_pipeline,
    fake_strimzi,
    fko,
    pipeline,
    strimzi,
    upstream_crds,
)
from tests.doubles.kube_watch import api_client
from tests.integration.testbed import started_service

__all__ = ["fake_fko", "fake_pipeline", "fake_strimzi", "fko", "pipeline", "strimzi", "upstream_crds"]

CONTROLPLANE = ROOT / "testbed" / "controlplane.sh"
KAFKA = ROOT / "testbed" / "kafka.sh"
POSTGRES = ROOT / "testbed" / "postgres.sh"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/doubles/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[Path]:
    """The admin kubeconfig of a running kube-apiserver."""
    for kubeconfig in started_service(CONTROLPLANE, "control plane", 1800):
        yield Path(kubeconfig)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real single-node Kafka (KRaft) on loopback."""
    yield from started_service(KAFKA, "Kafka", 1200)


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A private PostgreSQL on loopback."""
    yield from started_service(POSTGRES, "PostgreSQL", 600)


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
