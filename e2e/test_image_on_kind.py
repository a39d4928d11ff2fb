"""The operator's image as the Helm chart runs it on kind: UID 65532, a read-only root filesystem, /tmp the
one writable path (an emptyDir: the Kubernetes client keeps its discovery cache there), and no restart."""

from __future__ import annotations

import json

from e2e.kindbed import KAPPA_NS, Cluster


def test_the_operator_runs_as_65532_on_a_read_only_root_filesystem(platform_ready: Cluster) -> None:
    cluster = platform_ready
    pods = json.loads(cluster.kubectl("-n", KAPPA_NS, "get", "pods", "-o", "json"))["items"]
    assert pods, "no operator pod"
    for pod in pods:
        name = pod["metadata"]["name"]
        (container,) = [c for c in pod["status"]["containerStatuses"] if c["name"] == "operator"]
        assert container["ready"] and container["restartCount"] == 0, container
        probe = cluster.kubectl(
            "-n", KAPPA_NS, "exec", name, "-c", "operator", "--", "sh", "-c",
            "id -u; touch /probe 2>&1; echo root=$?; touch /tmp/probe; echo tmp=$?",
        )  # fmt: skip
        lines = probe.splitlines()
        assert lines[0] == "65532", probe
        assert "Read-only file system" in probe and "root=1" in probe, probe
        assert "tmp=0" in probe, probe
