"""`kubectl apply -f examples/`, as a new user would, against the FKO (1.10 CRD with 1.15's flinkVersion enum)
and Strimzi doubles: every StreamJob reaches its FlinkDeployment, none is refused by the API server."""

from __future__ import annotations

import time
from typing import Any

from tests.doubles.fko import FakeFlinkOperator
from tests.integration.testbed import ROOT, Kubectl, OperatorProcess, conditions


def test_kubectl_apply_examples_reconciles_with_no_child_rejected(
    kubectl: Kubectl, fko: FakeFlinkOperator, kappa_operator: OperatorProcess, kafka_bootstrap: str
) -> None:
    kubectl.run("apply", "-f", str(ROOT / "examples"))
    deadline = time.monotonic() + 60
    deployments: set[str] = set()
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        listed = kubectl("get", "flinkdeployments", "-o", "name")
        deployments = {line.split("/", 1)[1] for line in listed.split()}
        jobs = [kubectl.get("sj", name) for name in ("sessionizer", "enricher")]
        if {"sessionizer-v1", "enricher-v4"} <= deployments and all(conditions(j) for j in jobs):
            break
        time.sleep(1)
    assert {"sessionizer-v1", "enricher-v4"} <= deployments, deployments
    for job in jobs:
        stalled = conditions(job).get("Stalled") or {}
        assert stalled.get("reason") != "ChildRejected", stalled.get("message")
    fd = kubectl.get("flinkdeployment", "sessionizer-v1")
    assert fd["spec"]["flinkVersion"] == "v2_2"  # the example's, as a current FKO accepts it
    assert fd["spec"]["flinkConfiguration"]["kubernetes.operator.snapshot.resource.enabled"] == "false"
