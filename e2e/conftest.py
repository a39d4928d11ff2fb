"""e2e on kind: real Strimzi, FKO and Flink, and this operator's image installed by its Helm chart.

Needs a Docker engine, network access and about 8 GB of memory for Docker; `make e2e` runs it (docs/e2e.md).
Where any of that is missing, every test here is skipped with the reason. Versions, sources: e2e/kindbed.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.kindbed import (
    CACHE,
    FKO_CHART,
    FKO_NS,
    FLINK_DATA,
    FLINK_IMAGE,
    JOBS_NS,
    KAFKA_NS,
    KAPPA_NS,
    KIND_NODE_IMAGE,
    KIND_VERSION,
    KUBECTL_VERSION,
    MANIFESTS,
    OPERATOR_IMAGE,
    ROOT,
    STRIMZI_INSTALL,
    Cluster,
    arch,
    kind_binary,
    kubectl_binary,
    run,
    skip_reason,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = skip_reason()
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=f"e2e skipped: {reason}"))


@pytest.fixture(scope="session")
def kind(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A one-node kind cluster (pytest-kind-ng): --cluster-name names it, --keep-cluster keeps it."""
    from pytest_kind import KindCluster

    (CACHE / "bin").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(
        "KIND_DOWNLOAD_URL",
        f"https://github.com/kubernetes-sigs/kind/releases/download/{KIND_VERSION}/kind-linux-{arch()}",
    )
    os.environ.setdefault(
        "KUBECTL_DOWNLOAD_URL", f"https://dl.k8s.io/release/{KUBECTL_VERSION}/bin/linux/{arch()}/kubectl"
    )
    name = request.config.getoption("cluster_name")
    cluster = KindCluster(name, image=KIND_NODE_IMAGE, kind_path=kind_binary(), kubectl_path=kubectl_binary())
    cluster.create()
    cluster.ensure_kubectl()
    yield Cluster(name, Path(cluster.kubeconfig_path), kubectl_binary())
    if not request.config.getoption("keep_cluster"):
        cluster.delete()


def helm_binary() -> Path:
    """helm, built from its Go module by testbed/build-helm.sh (cached under ~/.cache/kappa-operator/bin)."""
    run("bash", str(ROOT / "testbed" / "build-helm.sh"), timeout=1800)
    return CACHE / "bin" / "helm"


@pytest.fixture(scope="session")
def platform_ready(kind: Cluster) -> Cluster:
    """Everything the story needs, installed as a user would: images built and loaded, Strimzi and a Kafka
    cluster, FKO, and this operator from its chart. Each step is a command a user can run by hand."""
    helm = str(helm_binary())
    kubeconfig = f"--kubeconfig={kind.kubeconfig}"
    node = f"{kind.name}-control-plane"
    # The images, into kind: this operator's (Dockerfile), the Flink SQL runner's (testbed/flink/Dockerfile).
    repository, tag = OPERATOR_IMAGE
    run("docker", "build", "-t", f"{repository}:{tag}", str(ROOT))
    run("docker", "build", "-f", str(ROOT / "testbed/flink/Dockerfile"), "-t", FLINK_IMAGE, str(ROOT))
    for image in (f"{repository}:{tag}", FLINK_IMAGE):
        run(str(kind_binary()), "load", "docker-image", "--name", kind.name, image)
    # Savepoints on the node, writable by Flink's UID 9999 (a hostPath directory belongs to root).
    run("docker", "exec", node, "sh", "-c", f"mkdir -p {FLINK_DATA} && chmod 0777 {FLINK_DATA}")
    for ns in (KAFKA_NS, FKO_NS, JOBS_NS):
        kind.kubectl(
            "apply", "-f", "-", stdin=kind.kubectl("create", "namespace", ns, "--dry-run=client", "-o=yaml")
        )
    # Strimzi: its release YAML, its RoleBindings pointed at namespace kafka (as its docs do with sed).
    strimzi = run("curl", "-fsSL", STRIMZI_INSTALL).replace("namespace: myproject", f"namespace: {KAFKA_NS}")
    kind.kubectl("-n", KAFKA_NS, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=strimzi)
    kind.kubectl("-n", KAFKA_NS, "rollout", "status", "deploy/strimzi-cluster-operator", "--timeout=600s")
    kind.kubectl("-n", KAFKA_NS, "apply", "-f", str(MANIFESTS / "kafka.yaml"))
    # FKO from its release chart, watching the jobs' namespace (it creates the `flink` ServiceAccount there).
    run(
        helm, kubeconfig, "upgrade", "--install", "flink-kubernetes-operator", FKO_CHART,
        "-n", FKO_NS, "--set", "webhook.create=false", "--set", f"watchNamespaces={{{JOBS_NS}}}",
        "--wait", "--timeout", "10m",
    )  # fmt: skip
    # This operator, from its chart, with the image just loaded.
    run(
        helm, kubeconfig, "upgrade", "--install", "kappa", str(ROOT / "charts" / "kappa-operator"),
        "-n", KAPPA_NS, "--create-namespace",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    kind.kubectl(
        "-n", KAFKA_NS, "wait", "kafka/events", "--for=condition=Ready", "--timeout=900s", timeout=960
    )
    kind.kubectl("-n", KAFKA_NS, "wait", "kafkatopic/clicks", "--for=condition=Ready", "--timeout=300s")
    return kind
