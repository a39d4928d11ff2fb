"""The operator runs under the ServiceAccount and ClusterRole that manifests/ ships: enough, and no more."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.testbed import ROOT, Kubectl

# (verb, API group, resource, subresource). Asked as SelfSubjectAccessReviews, which need no discovery, so
# they hold before the FKO and Strimzi CRDs are installed.
NEEDED = [
    ("list", "kappa.dev", "streamjobs", ""),
    ("patch", "kappa.dev", "streamjobs", ""),  # its finalizer
    ("patch", "kappa.dev", "replayruns", ""),  # its finalizer; the spec is immutable by CEL
    ("watch", "kappa.dev", "replayruns", ""),
    ("create", "kappa.dev", "replayruns", ""),  # strategy replay
    ("patch", "kappa.dev", "materializedviews", "status"),
    ("patch", "kappa.dev", "streamjobs", "status"),
    ("patch", "kappa.dev", "replayruns", "status"),
    ("create", "", "events", ""),
    ("create", "flink.apache.org", "flinkdeployments", ""),
    ("patch", "flink.apache.org", "flinkdeployments", ""),
    ("delete", "flink.apache.org", "flinkdeployments", ""),
    ("create", "flink.apache.org", "flinkstatesnapshots", ""),
    ("patch", "kafka.strimzi.io", "kafkatopics", ""),
    ("create", "kafka.strimzi.io", "kafkausers", ""),
    ("create", "", "configmaps", ""),
    ("get", "", "secrets", ""),
    ("watch", "apiextensions.k8s.io", "customresourcedefinitions", ""),
]
FORBIDDEN = [
    ("delete", "", "secrets", ""),
    ("list", "", "secrets", ""),
    ("patch", "kappa.dev", "materializedviews", ""),  # the main resource: spec, labels, annotations
    ("update", "kappa.dev", "replayruns", ""),
    ("delete", "kappa.dev", "materializedviews", ""),
    ("create", "", "pods", ""),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", ""),
]


def _id(check: tuple[str, ...]) -> str:
    verb, group, resource, sub = check
    return f"{verb} {resource}{'/' + sub if sub else ''}{'.' + group if group else ''}"


def can_i(kubectl: Kubectl, verb: str, group: str, resource: str, subresource: str) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": kubectl.namespace,
                "verb": verb,
                "group": group,
                "resource": resource,
                "subresource": subresource,
            }
        },
    }
    out = kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    return bool(json.loads(out)["status"].get("allowed"))


@pytest.fixture
def as_operator(operator_kubeconfig: Path, namespace: str) -> Kubectl:
    return Kubectl(operator_kubeconfig, namespace)


@pytest.mark.parametrize("check", NEEDED, ids=[_id(c) for c in NEEDED])
def test_the_operator_may_do_what_it_needs(as_operator: Kubectl, check: tuple[str, str, str, str]) -> None:
    assert can_i(as_operator, *check), f"operator cannot {_id(check)}"


@pytest.mark.parametrize("check", FORBIDDEN, ids=[_id(c) for c in FORBIDDEN])
def test_the_operator_may_not_do_more(as_operator: Kubectl, check: tuple[str, str, str, str]) -> None:
    assert not can_i(as_operator, *check), f"operator can {_id(check)}"


def test_deleting_a_secret_as_the_operator_is_forbidden(kubectl: Kubectl, as_operator: Kubectl) -> None:
    kubectl("create", "secret", "generic", "sessions-db", "--from-literal=uri=postgresql://x")
    result = as_operator.run("delete", "secret", "sessions-db", check=False)
    assert result.returncode != 0
    assert "Forbidden" in result.stderr and 'cannot delete resource "secrets"' in result.stderr
    assert kubectl("get", "secret", "sessions-db", "-o", "name").strip() == "secret/sessions-db"


def test_writing_a_spec_as_the_operator_is_forbidden(kubectl: Kubectl, as_operator: Kubectl) -> None:
    kubectl.apply(ROOT / "examples" / "02-materializedview-sessions.yaml")
    result = as_operator.run(
        "patch", "mv", "sessions", "--type=merge", "-p", '{"spec":{"retainVersions":5}}', check=False
    )
    assert result.returncode != 0 and "Forbidden" in result.stderr
    assert kubectl.get("mv", "sessions")["spec"]["retainVersions"] == 2
