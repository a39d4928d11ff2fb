"""Argo CD health checks and actions (manifests/argocd/resource_customizations), run as Argo CD runs them.

testbed/argocd-lua is a harness on gopher-lua that opens only the libraries Argo CD opens for argocd-cm
scripts and runs every health_test.yaml and actions/action_test.yaml the way Argo CD's util/lua tests run
its own resource_customizations. These tests run it, and check that it can fail, that every health status a
kind can produce is tested, that actions write annotations only, and that the argocd-cm snippet matches the
Lua files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CUSTOMIZATIONS = ROOT / "manifests" / "argocd" / "resource_customizations"
KINDS = CUSTOMIZATIONS / "kappa.dev"
CONFIGMAP = ROOT / "manifests" / "argocd" / "argocd-cm-patch.yaml"
DOC = ROOT / "docs" / "argocd.md"

# What each kind's health can be: a ReplayRun and a StreamJob pause (awaiting approval, spec.suspend); a view
# does not.
STATUSES = {
    "ReplayRun": {"Healthy", "Progressing", "Degraded", "Suspended"},
    "StreamJob": {"Healthy", "Progressing", "Degraded", "Suspended"},
    "MaterializedView": {"Healthy", "Progressing", "Degraded"},
}
# The kinds `kubectl kappa approve|abort|rollback` act on, and their actions.
ACTIONS = {"ReplayRun": {"approve", "abort", "rollback"}, "StreamJob": {"rollback"}}


@pytest.fixture(scope="module")
def harness() -> Path:
    """The harness binary, built by testbed/build-argocd-lua.sh (a no-op once cached; `make test` runs it)."""
    built = subprocess.run(
        ["bash", str(ROOT / "testbed" / "build-argocd-lua.sh")], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return Path(built.stdout.strip().splitlines()[-1])


def run(harness: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(harness), *args], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def health_tests(kind: str) -> list[dict[str, Any]]:
    return list(load(KINDS / kind / "health_test.yaml")["tests"])


def count_tests() -> int:
    total = sum(len(health_tests(kind)) for kind in STATUSES)
    for kind in ACTIONS:
        spec = load(KINDS / kind / "actions" / "action_test.yaml")
        total += len(spec["discoveryTests"]) + len(spec["actionTests"])
    return total


def test_every_health_check_and_action_gives_what_its_tests_expect(harness: Path) -> None:
    result = run(harness, "test", str(CUSTOMIZATIONS))
    assert result.returncode == 0, result.stdout + result.stderr
    # Every test in the YAML files ran: none skipped by a path the harness did not walk.
    assert result.stdout.splitlines()[-1] == f"{count_tests()} passed, 0 failed", result.stdout


def test_a_wrong_expectation_fails_the_harness_and_names_the_test(harness: Path, tmp_path: Path) -> None:
    tree = tmp_path / "resource_customizations"
    shutil.copytree(CUSTOMIZATIONS, tree)
    kind = tree / "kappa.dev" / "ReplayRun"
    tests = load(kind / "health_test.yaml")
    suspended = next(t for t in tests["tests"] if t["healthStatus"]["status"] == "Suspended")
    suspended["healthStatus"]["status"] = "Healthy"
    (kind / "health_test.yaml").write_text(yaml.safe_dump(tests))
    actions = load(kind / "actions" / "action_test.yaml")
    approve = next(t for t in actions["actionTests"] if t["action"] == "approve")
    expected = load(kind / "actions" / approve["expectedOutputPath"])
    expected["metadata"]["annotations"]["kappa.dev/approve"] = "someone-else"
    (kind / "actions" / approve["expectedOutputPath"]).write_text(yaml.safe_dump(expected))

    result = run(harness, "test", str(tree))
    assert result.returncode == 1, result.stdout
    failed = {line for line in result.stdout.splitlines() if line.startswith("FAIL")}
    assert failed == {
        f"FAIL kappa.dev/ReplayRun/health/{suspended['inputPath']}",
        f"FAIL kappa.dev/ReplayRun/actions/approve/{approve['inputPath']}",
    }, result.stdout
    assert 'want   Healthy "' in result.stdout
    assert 'metadata.annotations.kappa.dev/approve: got "20260102T030405Z-argocd", want "someone-else"' in (
        result.stdout
    )


@pytest.mark.parametrize(
    "line",
    [
        'local shout = string.upper("x")',  # no string library for argocd-cm scripts
        "local n = math.floor(1.5)",  # nor math
        "local t = os.time()",  # os is not a global: only require("os") gives the safe one
        'local os = require("os"); os.exit(1)',  # and that one has only time and date
        'local io = require("io")',
        "if obj.status == nil then while true do end end",  # Argo CD stops a script after one second
    ],
)
def test_a_script_using_what_argo_cd_does_not_open_fails_as_it_would_in_argo_cd(
    harness: Path, tmp_path: Path, line: str
) -> None:
    tree = tmp_path / "resource_customizations"
    shutil.copytree(CUSTOMIZATIONS, tree)
    script = tree / "kappa.dev" / "MaterializedView" / "health.lua"
    script.write_text(line + "\n" + script.read_text())
    result = run(harness, "test", str(tree))
    assert result.returncode == 1, result.stdout
    assert "FAIL kappa.dev/MaterializedView/health/" in result.stdout
    assert "error: " in result.stdout


@pytest.mark.parametrize("kind", sorted(STATUSES))
def test_each_kind_has_a_health_test_for_every_status_it_can_produce(kind: str) -> None:
    script = (KINDS / kind / "health.lua").read_text()
    produced = set(re.findall(r'hs\.status = "(\w+)"', script))
    assert produced == STATUSES[kind]
    tested = {t["healthStatus"]["status"] for t in health_tests(kind)}
    assert tested == produced
    # And a status behind its generation is Progressing, for every kind.
    behind = [
        t
        for t in health_tests(kind)
        if (obj := load(KINDS / kind / t["inputPath"])).get("status", {}).get("observedGeneration", 0)
        < obj["metadata"].get("generation", 0)
    ]
    assert behind and all(t["healthStatus"]["status"] == "Progressing" for t in behind)


def test_replayrun_health_is_what_the_issue_asks_for_each_phase() -> None:
    """Awaiting approval is Suspended, running Progressing, failed Degraded, succeeded Healthy."""
    by_phase: dict[str | None, set[str]] = {}
    for test in health_tests("ReplayRun"):
        obj = load(KINDS / "ReplayRun" / test["inputPath"])
        status = obj.get("status") or {}
        annotations = obj["metadata"].get("annotations") or {}
        if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
            continue
        final = status.get("phase") in ("Succeeded", "Failed", "Aborted", "RolledBack")
        if not final and {"kappa.dev/approve", "kappa.dev/abort"} & set(annotations):
            continue  # asked for, not acted on yet: Progressing (tested on its own)
        by_phase.setdefault(status.get("phase"), set()).add(test["healthStatus"]["status"])
    assert by_phase["AwaitingApproval"] == {"Suspended"}
    for running in ("Preflight", "Replaying", "CatchingUp", "Validating", "Observing"):
        assert by_phase[running] == {"Progressing"}, running
    for failed in ("Failed", "Aborted", "RolledBack"):
        assert by_phase[failed] == {"Degraded"}, failed
    assert "Healthy" in by_phase["Succeeded"]


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_actions_set_their_annotation_and_nothing_else(kind: str) -> None:
    actions = KINDS / kind / "actions"
    assert {p.parent.name for p in actions.glob("*/action.lua")} == ACTIONS[kind]
    spec = load(actions / "action_test.yaml")
    assert {t["action"] for t in spec["actionTests"]} == ACTIONS[kind]
    for test in spec["actionTests"]:
        before, after = load(actions / test["inputPath"]), load(actions / test["expectedOutputPath"])
        added = (after["metadata"].pop("annotations") or {}).copy()
        for key, value in (before["metadata"].pop("annotations", None) or {}).items():
            if added.get(key) == value:
                del added[key]
        assert before == after, f"{test['action']} changed more than metadata.annotations"
        assert list(added) == [f"kappa.dev/{test['action']}"]
    # Each action is offered somewhere and withheld somewhere.
    seen: dict[str, set[bool]] = {}
    for test in spec["discoveryTests"]:
        assert {a["name"] for a in test["result"]} == ACTIONS[kind]
        for action in test["result"]:
            seen.setdefault(action["name"], set()).add(bool(action.get("disabled", False)))
    assert all(states == {True, False} for states in seen.values()), seen


def test_the_argocd_cm_patch_and_the_doc_match_the_lua_files(harness: Path) -> None:
    result = run(harness, "configmap", "manifests/argocd/resource_customizations")
    assert result.returncode == 0, result.stderr
    regenerate = (
        "regenerate: $(bash testbed/build-argocd-lua.sh) configmap manifests/argocd/resource_customizations "
        "> manifests/argocd/argocd-cm-patch.yaml"
    )
    assert CONFIGMAP.read_text() == result.stdout, regenerate
    data = yaml.safe_load(result.stdout)["data"]
    for kind in STATUSES:
        assert (
            data[f"resource.customizations.health.kappa.dev_{kind}"]
            == (KINDS / kind / "health.lua").read_text()
        )
    for kind, names in ACTIONS.items():
        actions = yaml.safe_load(data[f"resource.customizations.actions.kappa.dev_{kind}"])
        assert actions["discovery.lua"] == (KINDS / kind / "actions" / "discovery.lua").read_text()
        assert {d["name"]: d["action.lua"] for d in actions["definitions"]} == {
            name: (KINDS / kind / "actions" / name / "action.lua").read_text() for name in names
        }
    # The doc shows the same data, in the block between its markers.
    doc = DOC.read_text()
    block = doc.split("<!-- argocd-cm: begin -->\n```yaml\n", 1)[1].split("```\n<!-- argocd-cm: end -->", 1)[
        0
    ]
    assert block == result.stdout, (
        "docs/argocd.md: copy manifests/argocd/argocd-cm-patch.yaml between the markers"
    )
