"""The operator runs under the ServiceAccount and ClusterRole that manifests/ ships: enough, and no more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.testbed import Kubectl

NEEDED = [
    ("list", "streamjobs.kappa.dev"),
    ("watch", "replayruns.kappa.dev"),
    ("patch", "materializedviews.kappa.dev", "--subresource=status"),
    ("patch", "streamjobs.kappa.dev", "--subresource=status"),
    ("create", "events"),
    ("create", "flinkdeployments.flink.apache.org"),
    ("delete", "flinkdeployments.flink.apache.org"),
    ("patch", "kafkatopics.kafka.strimzi.io"),
    ("create", "configmaps"),
    ("get", "secrets"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
]
FORBIDDEN = [
    ("delete", "secrets"),
    ("list", "secrets"),
    ("patch", "streamjobs.kappa.dev"),  # the main resource: spec, labels, annotations
    ("update", "replayruns.kappa.dev"),
    ("delete", "materializedviews.kappa.dev"),
    ("create", "pods"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
]


@pytest.fixture
def as_operator(operator_kubeconfig: Path, namespace: str) -> Kubectl:
    return Kubectl(operator_kubeconfig, namespace)


@pytest.mark.parametrize("check", NEEDED, ids=[" ".join(c[:2]) for c in NEEDED])
def test_the_operator_may_do_what_it_needs(as_operator: Kubectl, check: tuple[str, ...]) -> None:
    result = as_operator.run("auth", "can-i", *check, check=False)
    assert result.stdout.strip() == "yes", f"operator cannot {' '.join(check)}"


@pytest.mark.parametrize("check", FORBIDDEN, ids=[" ".join(c[:2]) for c in FORBIDDEN])
def test_the_operator_may_not_do_more(as_operator: Kubectl, check: tuple[str, ...]) -> None:
    result = as_operator.run("auth", "can-i", *check, check=False)
    assert result.stdout.strip() == "no", f"operator can {' '.join(check)}"


def test_deleting_a_secret_as_the_operator_is_forbidden(kubectl: Kubectl, as_operator: Kubectl) -> None:
    kubectl("create", "secret", "generic", "sessions-db", "--from-literal=uri=postgresql://x")
    result = as_operator.run("delete", "secret", "sessions-db", check=False)
    assert result.returncode != 0
    assert "Forbidden" in result.stderr and 'cannot delete resource "secrets"' in result.stderr
    assert kubectl("get", "secret", "sessions-db", "-o", "name").strip() == "secret/sessions-db"


def test_writing_a_spec_as_the_operator_is_forbidden(kubectl: Kubectl, as_operator: Kubectl) -> None:
    from tests.integration.testbed import ROOT

    kubectl.apply(ROOT / "examples" / "02-materializedview-sessions.yaml")
    result = as_operator.run(
        "patch", "mv", "sessions", "--type=merge", "-p", '{"spec":{"retainVersions":5}}', check=False
    )
    assert result.returncode != 0 and "Forbidden" in result.stderr
    assert kubectl.get("mv", "sessions")["spec"]["retainVersions"] == 2
