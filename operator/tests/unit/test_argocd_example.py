"""examples/argocd/application.yaml: each Argo CD Application has what Argo CD requires, points at a path that
exists in this repository with what it expects there, and Argo CD has a health check for every custom kind it
syncs (manifests/argocd/argocd-cm-patch.yaml, docs/argocd.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "argocd" / "application.yaml"
PATCH = ROOT / "manifests" / "argocd" / "argocd-cm-patch.yaml"


def applications() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return {d["metadata"]["name"]: d for d in docs}


def test_each_application_has_the_fields_argo_cd_requires() -> None:
    apps = applications()
    assert set(apps) == {"kappa-operator", "kappa-examples"}
    for name, app in apps.items():
        assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application"), name
        assert app["metadata"]["namespace"] == "argocd", name
        spec = app["spec"]
        assert spec["project"], name
        source = spec["source"]
        assert source["repoURL"].startswith("https://") and source["targetRevision"], name
        destination = spec["destination"]
        assert destination.get("server") or destination.get("name"), name
        assert destination["namespace"], name
        assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"], name


def test_the_operator_comes_from_the_chart_with_values_it_knows() -> None:
    app = applications()["kappa-operator"]
    source = app["spec"]["source"]
    chart = ROOT / source["path"]
    assert (chart / "Chart.yaml").is_file()
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["name"] == "kappa-operator"
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    given = source["helm"]["valuesObject"]
    assert set(given) <= set(defaults), f"values the chart does not have: {set(given) - set(defaults)}"
    for key, value in given.items():
        if isinstance(value, dict):
            assert set(value) <= set(defaults[key]), f"{key}: {set(value) - set(defaults[key])}"
    assert app["spec"]["destination"]["namespace"] == "kappa-system"


def test_the_examples_app_syncs_the_top_of_examples_and_argo_cd_can_judge_each_kind() -> None:
    app = applications()["kappa-examples"]
    source = app["spec"]["source"]
    folder = ROOT / source["path"]
    assert source["directory"]["recurse"] is False  # not examples/argocd itself, not examples/demo
    synced = [d for f in sorted(folder.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    assert synced, f"no manifests at the top of {folder}"
    assert not [d for d in synced if d["kind"] == "Application"]
    custom = {d["kind"] for d in synced if d["apiVersion"].startswith("kappa.dev/")}
    assert custom == {"StreamJob", "ReplayRun", "MaterializedView"}
    health = yaml.safe_load(PATCH.read_text())["data"]
    for kind in custom:
        assert f"resource.customizations.health.kappa.dev_{kind}" in health, kind
    # The example's own instructions name the patch that carries those checks.
    assert "manifests/argocd/argocd-cm-patch.yaml" in EXAMPLE.read_text()
