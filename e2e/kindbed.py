"""The e2e platform on kind: pinned versions, the skip reason, and the cluster as kubectl sees it.

Needs a Docker engine, network access to the hosts below, and about 8 GB of memory for Docker. `make e2e` runs
it (docs/e2e.md). Where any of that is missing, every test here is skipped with the reason.

Pinned, and where each comes from:
- kind v0.32.0 and its default node image, by digest (pkg/apis/config/defaults/image.go at tag v0.32.0);
- Strimzi 1.2.0, `strimzi-cluster-operator-1.2.0.yaml` from its GitHub release (the project's Strimzi, see
  testbed/upstream-crds/fetch.sh);
- FKO 1.15.0, `flink-kubernetes-operator-1.15.0-helm.tgz` from the ASF archive (every release stays there;
  downloads.apache.org keeps only the current one). The test doubles carry FKO 1.10.0's CRD with 1.15.0's
  flinkVersion enum (testbed/upstream-crds/NOTES.md): 1.10.0 refuses `flinkVersion: v2_2`, so the real FKO
  here is 1.15.0.
  Its webhook is off (`webhook.create=false`), so no cert-manager is needed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = Path(__file__).resolve().parent / "manifests"
CACHE = Path(os.environ.get("KAPPA_CACHE", Path.home() / ".cache" / "kappa-operator"))

KIND_VERSION = "v0.32.0"
KIND_NODE_IMAGE = (
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
)
KUBECTL_VERSION = "v1.36.1"  # the node's: no version skew
STRIMZI_VERSION = "1.2.0"
STRIMZI_INSTALL = (
    f"https://github.com/strimzi/strimzi-kafka-operator/releases/download/{STRIMZI_VERSION}/"
    f"strimzi-cluster-operator-{STRIMZI_VERSION}.yaml"
)
FKO_VERSION = "1.15.0"
FKO_CHART = (
    f"https://archive.apache.org/dist/flink/flink-kubernetes-operator-{FKO_VERSION}/"
    f"flink-kubernetes-operator-{FKO_VERSION}-helm.tgz"
)
OPERATOR_IMAGE = ("kappa-operator", "0.1.0")
FLINK_IMAGE = "kappa-dev/flink-sql-runner:2.2"

KAFKA_NS = "kafka"  # Strimzi's cluster operator and the Kafka cluster `events`
FKO_NS = "flink-operator"
KAPPA_NS = "kappa-system"  # this operator, from charts/kappa-operator
JOBS_NS = "kappa-e2e"  # StreamJob, ReplayRun, MaterializedView and their FlinkDeployments
FLINK_DATA = "/var/lib/kappa-e2e/flink-data"  # on the kind node: savepoints (e2e/manifests/streamjob.yaml)

HOSTS = {
    "github.com": "kind and the Strimzi release",
    "archive.apache.org": "the FKO Helm chart",
    "registry-1.docker.io": "the python, maven and flink base images",
    "quay.io": "Strimzi's images",
    "ghcr.io": "FKO's image",
    "repo.maven.apache.org": "the Flink SQL runner's connectors",
    "proxy.golang.org": "helm, built from its Go module",
}


def skip_reason() -> str | None:
    """Why the e2e suite cannot run here, or None."""
    try:
        import pytest_kind  # noqa: F401
    except ImportError:
        return "pytest-kind-ng is not installed: pip install -e '.[e2e]' (make e2e does)"
    if not shutil.which("docker"):
        return "no docker client on this machine; kind needs a Docker engine"
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "docker info timed out: no Docker engine answering; kind needs one"
    if probe.returncode != 0:
        return "no Docker engine reachable (docker info failed); kind needs one"
    if not shutil.which("curl"):
        return "no curl on this machine (it fetches Strimzi's release YAML)"
    if not (CACHE / "bin" / "helm").exists() and not shutil.which("go"):
        return "no helm in ~/.cache/kappa-operator/bin and no go to build it (testbed/build-helm.sh)"
    for host, what in HOSTS.items():
        try:
            socket.create_connection((host, 443), timeout=5).close()
        except OSError as exc:
            return f"no network access to {host}:443 ({what}): {exc}"
    return None


def run(*cmd: str, stdin: str | None = None, timeout: float = 1800, check: bool = True) -> str:
    """A command as a user would type it, echoed; its output, or a failure that shows it."""
    print("+", " ".join(cmd), flush=True)
    done = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")


@dataclass
class Cluster:
    """The kind cluster, as kubectl sees it."""

    name: str
    kubeconfig: Path
    kubectl_path: Path

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 600, check: bool = True) -> str:
        return run(
            str(self.kubectl_path),
            f"--kubeconfig={self.kubeconfig}",
            *args,
            stdin=stdin,
            timeout=timeout,
            check=check,
        )

    def get(self, kind: str, name: str, namespace: str = JOBS_NS) -> dict[str, Any] | None:
        try:
            out = self.kubectl("-n", namespace, "get", kind, name, "-o", "json")
        except AssertionError as exc:
            if "NotFound" in str(exc):
                return None
            raise
        obj: dict[str, Any] = json.loads(out)
        return obj

    def wait_for(
        self,
        kind: str,
        name: str,
        check: Callable[[dict[str, Any]], object],
        *,
        what: str,
        timeout: float,
        namespace: str = JOBS_NS,
    ) -> dict[str, Any]:
        """Poll an object until `check` holds; on timeout, fail naming what it waited for, with its status."""
        deadline = time.monotonic() + timeout
        obj: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            obj = self.get(kind, name, namespace)
            if obj is not None and check(obj):
                return obj
            time.sleep(5)
        status = json.dumps((obj or {}).get("status"), indent=1)[:4000]
        raise AssertionError(f"{kind}/{name}: {what} not within {timeout:.0f}s; status: {status}")

    def broker(self) -> str:
        pods = self.kubectl(
            "-n", KAFKA_NS, "get", "pods", "-l", "strimzi.io/cluster=events,strimzi.io/broker-role=true",
            "-o", "name",
        ).split()  # fmt: skip
        assert pods, "no Kafka broker pod"
        return pods[0]

    def produce(self, topic: str, records: list[dict[str, Any]]) -> None:
        """Records as JSON lines, through the console producer in the broker's own container."""
        lines = "".join(json.dumps(r) + "\n" for r in records)
        self.kubectl(
            "-n", KAFKA_NS, "exec", "-i", self.broker(), "--",
            "/opt/kafka/bin/kafka-console-producer.sh", "--bootstrap-server", "localhost:9092",
            "--topic", topic,
            stdin=lines,
        )  # fmt: skip

    def consume(self, topic: str) -> list[dict[str, Any]]:
        """Every record of the topic so far. The console consumer stops after 15 s without a new record (and
        says so with a TimeoutException, whatever its exit code), so its output is what counts."""
        out = self.kubectl(
            "-n", KAFKA_NS, "exec", self.broker(), "--",
            "/opt/kafka/bin/kafka-console-consumer.sh", "--bootstrap-server", "localhost:9092",
            "--topic", topic,
            "--from-beginning", "--timeout-ms", "15000",
            check=False,
        )  # fmt: skip
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def kind_binary() -> Path:
    """kind KIND_VERSION, downloaded once into the cache (by pytest-kind-ng, from KIND_DOWNLOAD_URL)."""
    return CACHE / "bin" / f"kind-{KIND_VERSION}"


def kubectl_binary() -> Path:
    return CACHE / "bin" / f"kubectl-{KUBECTL_VERSION}"
