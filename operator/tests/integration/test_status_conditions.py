"""Users follow resources through kstatus conditions; the operator writes status and nothing else."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.integration.testbed import ROOT, Kubectl, OperatorProcess, conditions

KINDS = {
    "sj": ("sessionizer", ROOT / "examples" / "03-streamjob-sessionizer.yaml"),
    "rr": ("sessionizer-v2", ROOT / "examples" / "04-replayrun-sessionizer-v2.yaml"),
    "mv": ("sessions", ROOT / "examples" / "02-materializedview-sessions.yaml"),
}
KSTATUS = {"Ready", "Reconciling", "Stalled"}


def has_conditions_for_generation(obj: dict) -> bool:
    gen = obj["metadata"]["generation"]
    conds = conditions(obj)
    return (
        conds.keys() >= KSTATUS
        and obj.get("status", {}).get("observedGeneration") == gen
        and all(c["observedGeneration"] == gen for c in conds.values())
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_fresh_resource_gets_kstatus_conditions_on_first_reconcile(
    kappa_operator: OperatorProcess, kubectl: Kubectl, kind: str
) -> None:
    name, manifest = KINDS[kind]
    kubectl.apply(manifest)
    obj = kubectl.wait_for(kind, name, has_conditions_for_generation, what="first conditions")
    conds = conditions(obj)
    assert conds["Reconciling"]["status"] == "True"
    assert conds["Ready"]["status"] == "False"
    assert conds["Stalled"]["status"] == "False"
    for cond in conds.values():
        assert cond["reason"][0].isupper() and " " not in cond["reason"]
        assert cond["message"]
        assert cond["lastTransitionTime"]
    first_event = {"sj": "Deploying", "rr": "Accepted", "mv": "Accepted"}[kind]
    assert first_event in event_reasons(kubectl, name)


def event_reasons(kubectl: Kubectl, name: str, timeout: float = 15) -> set[str]:
    """Events are posted in the background; wait a little for them."""
    deadline = time.monotonic() + timeout
    reasons: set[str] = set()
    while time.monotonic() < deadline:
        out = kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
        reasons = {e["reason"] for e in json.loads(out)["items"]}
        if reasons:
            return reasons
        time.sleep(0.3)
    return reasons


def test_kubectl_wait_for_reconciling_returns(kappa_operator: OperatorProcess, kubectl: Kubectl) -> None:
    kubectl.apply(KINDS["sj"][1])
    out = kubectl("wait", "--for=condition=Reconciling", "sj/sessionizer", "--timeout=30s")
    assert "condition met" in out


def test_editing_spec_moves_observed_generation(kappa_operator: OperatorProcess, kubectl: Kubectl) -> None:
    kubectl.apply(KINDS["sj"][1])
    before = kubectl.wait_for("sj", "sessionizer", has_conditions_for_generation, what="conditions")
    assert before["metadata"]["generation"] == 1

    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", '{"spec":{"flink":{"parallelism":2}}}')
    after = kubectl.wait_for("sj", "sessionizer", has_conditions_for_generation, what="generation 2")
    assert after["metadata"]["generation"] == 2
    assert after["status"]["observedGeneration"] == 2
    assert {c["observedGeneration"] for c in conditions(after).values()} == {2}
    # kubectl wait honours observedGeneration: it returns only for the current generation.
    kubectl("wait", "--for=condition=Reconciling", "sj/sessionizer", "--timeout=30s")


def test_the_operator_writes_only_status(kappa_operator: OperatorProcess, kubectl: Kubectl) -> None:
    for _kind, (_name, manifest) in KINDS.items():
        kubectl.apply(manifest)
    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", '{"spec":{"flink":{"parallelism":3}}}')
    for kind, (name, _) in KINDS.items():
        obj = kubectl.wait_for(kind, name, has_conditions_for_generation, what="conditions")
        user_fields = {k: obj["metadata"].get(k) for k in ("labels", "annotations", "finalizers")}
        entries = obj["metadata"]["managedFields"]
        main = [e for e in entries if e.get("subresource") != "status"]
        writers_of_status = {e["manager"] for e in entries if e.get("subresource") == "status"}
        # Only the user's kubectl wrote spec, labels and annotations. The operator's one write to the main
        # resource is its finalizer on StreamJobs and ReplayRuns.
        for entry in main:
            if not entry["manager"].startswith("kubectl"):
                assert entry["manager"] == "kopf", entry
                assert entry["fieldsV1"] == {
                    "f:metadata": {"f:finalizers": {".": {}, 'v:"kappa.dev/finalizer"': {}}}
                }
        # The operator wrote status, through the status subresource only.
        assert writers_of_status and writers_of_status <= {"kopf", "kappa-operator"}, writers_of_status
        annotations = (user_fields["annotations"] or {}).keys()
        assert not [a for a in annotations if a.startswith(("kopf.", "kappa.dev/"))], annotations
        assert user_fields["finalizers"] in (None, ["kappa.dev/finalizer"])
        # Kopf's bookkeeping lives in status.
        assert "last-handled-configuration" in obj["status"]["kopf"]


def test_an_operator_restart_keeps_conditions_and_adds_nothing(
    kappa_operator: OperatorProcess, kubectl: Kubectl
) -> None:
    kubectl.apply(KINDS["mv"][1])
    before = kubectl.wait_for("mv", "sessions", has_conditions_for_generation, what="conditions")
    kappa_operator.kill()
    kappa_operator.start()
    after = kubectl.get("mv", "sessions")
    assert (
        conditions(after)["Reconciling"]["lastTransitionTime"]
        == conditions(before)["Reconciling"]["lastTransitionTime"]
    )
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


def test_status_cannot_be_set_through_the_main_resource(kubectl: Kubectl) -> None:
    """With the status subresource, a user's apply of status is ignored: status belongs to the operator."""
    kubectl.apply(KINDS["mv"][1])
    kubectl("patch", "mv", "sessions", "--type=merge", "-p", '{"status":{"activeVersion":"v9"}}')
    assert kubectl.get("mv", "sessions").get("status", {}).get("activeVersion") != "v9"


def test_kubectl_is_the_real_client(admin: Kubectl) -> None:
    version = json.loads(admin("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"].startswith("v1.36")
    assert subprocess.run(["kubectl", "version", "--client"], capture_output=True).returncode == 0
