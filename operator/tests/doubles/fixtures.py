"""Pytest fixtures for the doubles, to import into a conftest that already provides `control_plane` (the admin
kubeconfig, a Path), `kafka_bootstrap` (host:port) and `namespace` (a fresh namespace per test):

    from tests.doubles.fixtures import fake_fko, fake_strimzi, fko, strimzi, upstream_crds  # noqa: F401

Session fixtures install the upstream CRDs and run one double of each kind for the session; the function
fixtures `fko` and `strimzi` put the test's namespace under them and clear the test's scripts afterwards.
The session doubles act only in namespaces handed to them that way, so two test sessions sharing one API
server never drive each other's objects.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.kube_watch import api_client
from tests.doubles.strimzi import KAFKA_TOPICS, FakeTopicOperator

ROOT = Path(__file__).resolve().parents[3]
FETCH = ROOT / "testbed" / "upstream-crds" / "fetch.sh"

FKO_CRDS = ("flinkdeployments", "flinksessionjobs", "flinkstatesnapshots")
STRIMZI_CRDS = ("kafkatopics", "kafkausers")


@dataclass(frozen=True)
class UpstreamCrds:
    fko_dir: Path
    strimzi_dir: Path
    names: tuple[str, ...]


def remove_strimzi_kafka_kind(kubeconfig: Path) -> None:
    """Strimzi's `Kafka` CRD deleted if present, and waited for until discovery no longer serves the kind
    (discovery lags the deletion by a moment, and Kube.preferred reads discovery)."""
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig)]
    crd = "kafkas.kafka.strimzi.io"
    subprocess.run(
        [*kubectl, "delete", "crd", crd, "--ignore-not-found", "--timeout=60s"],
        check=True,
        capture_output=True,
        timeout=90,
    )
    deadline = time.monotonic() + 60
    while True:
        served = subprocess.run(
            [*kubectl, "api-resources", "--api-group=kafka.strimzi.io", "-o", "name", "--cached=false"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split()
        if crd not in served:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{crd} is still served 60 s after its deletion: {served}")
        time.sleep(0.2)


def install_upstream_crds(kubeconfig: Path) -> UpstreamCrds:
    """FKO 1.10.0 and Strimzi 1.2.0 CRDs, applied server-side (the FlinkDeployment CRD is too big for the
    client-side last-applied annotation) and waited for until Established."""
    fetched = subprocess.run(["bash", str(FETCH)], capture_output=True, text=True, timeout=900)
    if fetched.returncode != 0:
        raise RuntimeError(f"{FETCH} failed:\n{fetched.stderr[-4000:]}")
    fko_dir, strimzi_dir = (Path(line) for line in fetched.stdout.split())
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig)]
    apply = [*kubectl, "apply", "--server-side", "--field-manager=kappa-testbed", "--force-conflicts"]
    for directory in (fko_dir, strimzi_dir):
        subprocess.run(
            [*apply, "-f", str(directory)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    # Strimzi's Kafka kind is not installed (the tests serve it only inside
    # tests.integration.testbed.strimzi_kafka_kind): a stand-in left behind by an interrupted run on a kept
    # etcd goes, since the rest of the session relies on that kind not being served.
    remove_strimzi_kafka_kind(kubeconfig)
    names = (
        *(f"{p}.flink.apache.org" for p in FKO_CRDS),
        *(f"{p}.kafka.strimzi.io" for p in STRIMZI_CRDS),
    )
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names)],
        check=True,
        capture_output=True,
        timeout=90,
    )
    return UpstreamCrds(fko_dir, strimzi_dir, names)


@pytest.fixture(scope="session")
def upstream_crds(control_plane: Path) -> UpstreamCrds:
    return install_upstream_crds(control_plane)


@pytest.fixture(scope="session")
def fake_fko(control_plane: Path, upstream_crds: UpstreamCrds) -> Iterator[FakeFlinkOperator]:
    """The FKO double for the session, acting in no namespace until a test asks for `fko`."""
    with FakeFlinkOperator(control_plane, namespaces=()) as double:
        yield double
    assert not double.errors, double.errors


@pytest.fixture(scope="session")
def fake_strimzi(
    control_plane: Path, upstream_crds: UpstreamCrds, kafka_bootstrap: str
) -> Iterator[FakeTopicOperator]:
    """The topic-operator double for the session, acting in no namespace until a test asks for `strimzi`."""
    with FakeTopicOperator(control_plane, kafka_bootstrap, namespaces=()) as double:
        yield double
    assert not double.errors, double.errors


@pytest.fixture
def fko(fake_fko: FakeFlinkOperator, namespace: str) -> Iterator[FakeFlinkOperator]:
    """FlinkDeployments in this test's namespace get FKO's status; scripts set here end with the test."""
    fake_fko.add_namespace(namespace)
    yield fake_fko
    fake_fko.reset()


@pytest.fixture
def strimzi(
    fake_strimzi: FakeTopicOperator, namespace: str, control_plane: Path
) -> Iterator[FakeTopicOperator]:
    """KafkaTopics in this test's namespace become topics in the test Kafka. Afterwards they are deleted,
    and so their topics, while the double still runs: the namespace controller would get to them only
    seconds later, after the last tests' double may be gone, and their topics would stay in Kafka.

    The test's StreamJobs still exist and the operator still runs: a look that comes after the deletion
    applies a job's output topic again, as it should (CI of stop 24 failed on exactly that). So whatever is
    still there is deleted again, at most once a second, until none is left."""
    fake_strimzi.add_namespace(namespace)
    yield fake_strimzi
    fake_strimzi.reset()
    r = KAFKA_TOPICS
    custom = client.CustomObjectsApi(api_client(control_plane))
    last_delete = 0.0

    def gone() -> bool:
        nonlocal last_delete
        if not [o for o in fake_strimzi.watcher.snapshot() if o["metadata"]["namespace"] == namespace]:
            return True
        if time.monotonic() - last_delete >= 1:
            custom.delete_collection_namespaced_custom_object(r.group, r.version, namespace, r.plural)
            last_delete = time.monotonic()
        return False

    fake_strimzi.wait_until(gone, timeout=30, what=f"the KafkaTopics of {namespace} to go")
    fake_strimzi.drain()


# --- the data plane ----------------------------------------------------------------------------------------
# Also needs `postgres_uri` (a PostgreSQL URI) from the conftest.

from tests.doubles.pipeline import FakePipeline  # noqa: E402


@pytest.fixture(scope="session")
def fake_pipeline(
    control_plane: Path, fake_fko: FakeFlinkOperator, postgres_uri: str
) -> Iterator[FakePipeline]:
    """The jobs inside FlinkDeployments for the session: records really move from Kafka to PostgreSQL while
    the FKO double says RUNNING. Acts in no namespace until a test asks for `pipeline`."""
    with FakePipeline(control_plane, fake_fko, postgres_uri, namespaces=()) as double:
        yield double
    assert not double.errors, double.errors


@pytest.fixture
def pipeline(fake_pipeline: FakePipeline, fko: FakeFlinkOperator, namespace: str) -> Iterator[FakePipeline]:
    """FlinkDeployments in this test's namespace run the sessionizer (and get FKO's status, through `fko`);
    scripts set here end with the test."""
    fake_pipeline.add_namespace(namespace)
    yield fake_pipeline
    fake_pipeline.reset()
