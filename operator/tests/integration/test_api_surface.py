"""The API as users meet it: CRDs install, examples apply, `kubectl explain` and `kubectl get` work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.testbed import ROOT, Kubectl

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_crds_are_established_with_the_agreed_names(admin: Kubectl, crds: list[str]) -> None:
    for name in crds:
        crd = admin.get("crd", name)
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established.get("Established") == "True"
        assert established.get("NamesAccepted") == "True"
        names = crd["spec"]["names"]
        assert names["categories"] == ["kappa"]
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1alpha1"
        assert version["subresources"] == {"status": {}}
    short = {admin.get("crd", n)["spec"]["names"]["shortNames"][0] for n in crds}
    assert short == {"sj", "rr", "mv"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_every_example_applies_cleanly(kubectl: Kubectl, example: Path) -> None:
    result = kubectl.apply(example, check=False)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_kubectl_explain_shows_field_descriptions(admin: Kubectl, crds: list[str]) -> None:
    out = admin("explain", "streamjob.spec")
    assert "A versioned Flink streaming job. Changing `version` starts an upgrade." in out
    assert "A logic version, e.g. `v3`." in out
    upgrade = admin("explain", "streamjob.spec.upgrade.readinessTimeout")
    assert "Time for the new version to pass its readiness gates" in upgrade
    replay = admin("explain", "replayrun.spec.from")
    assert "exactly one of earliest, timestamp or offsets" in replay


def test_defaults_are_filled_in_by_the_api_server(kubectl: Kubectl) -> None:
    kubectl.apply(ROOT / "examples" / "03-streamjob-sessionizer.yaml")
    kubectl.apply(ROOT / "examples" / "04-replayrun-sessionizer-v2.yaml")
    job = kubectl.get("sj", "sessionizer")["spec"]
    assert job["upgrade"]["canary"]["outputRateRatio"] == {"min": 0.8, "max": 1.2}
    assert job["output"]["deletionPolicy"] == "Retain"
    assert job["flink"]["taskManager"]["replicas"] == 1
    run = kubectl.get("rr", "sessionizer-v2")["spec"]
    assert run["timeouts"]["awaitingApproval"] == "72h"
    assert run["until"] == {"live": True}


def test_kubectl_get_prints_the_printer_columns(kubectl: Kubectl) -> None:
    for example in EXAMPLES:
        kubectl.apply(example)
    out = kubectl("get", "sj,rr,mv")
    headers = [line.split() for line in out.splitlines() if line.startswith("NAME")]
    assert ["NAME", "VERSION", "ACTIVE", "PHASE", "LAG", "AGE"] in headers
    assert ["NAME", "JOB", "VERSION", "PHASE", "PROGRESS", "LAG", "ETA", "AGE"] in headers
    assert ["NAME", "BACKEND", "ACTIVE", "PREVIOUS", "AGE"] in headers
    assert "streamjob.kappa.dev/sessionizer" in out
    assert "replayrun.kappa.dev/sessionizer-v2" in out
    assert "materializedview.kappa.dev/sessions" in out
    by_category = kubectl("get", "kappa", "-o", "name").split()
    assert "materializedview.kappa.dev/orders-enriched" in by_category


def test_printer_columns_read_the_real_fields(kubectl: Kubectl) -> None:
    kubectl.apply(ROOT / "examples" / "02-materializedview-sessions.yaml")
    table = json.loads(kubectl("get", "mv", "sessions", "-o", "json"))
    assert table["spec"]["backend"]["type"] == "postgres"
    row = kubectl("get", "mv", "sessions", "--no-headers").split()
    assert row[:2] == ["sessions", "postgres"]
