"""On a kind cluster: the operator image runs from manifests/ and reconciles the examples.

Strimzi and FKO install steps join here with the StreamJob and ReplayRun issues.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cluster(kind_cluster):  # type: ignore[no-untyped-def]
    subprocess.run(["docker", "build", "-t", "kappa-operator:0.1.0", str(ROOT)], check=True)
    kind_cluster.load_docker_image("kappa-operator:0.1.0")
    kind_cluster.kubectl("apply", "-k", str(ROOT / "manifests"))
    kind_cluster.kubectl("-n", "kappa-system", "rollout", "status", "deploy/kappa-operator", "--timeout=180s")
    return kind_cluster


def test_examples_get_kstatus_conditions(cluster) -> None:  # type: ignore[no-untyped-def]
    cluster.kubectl("create", "namespace", "demo")
    cluster.kubectl("-n", "demo", "apply", "-f", str(ROOT / "examples"))
    out = cluster.kubectl(
        "-n", "demo", "wait", "--for=condition=Reconciling", "sj/sessionizer", "--timeout=60s"
    )
    assert "condition met" in out
