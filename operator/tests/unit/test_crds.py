"""The CRDs in crds/ are exactly what the models generate, and are shaped as Kubernetes requires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kappa.api.crd import KINDS, all_crds
from kappa.cli.main import render_yaml

ROOT = Path(__file__).resolve().parents[3]
GENERATED = all_crds()


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_committed_crd_matches_the_models(name: str) -> None:
    committed = (ROOT / "crds" / name).read_text()
    assert committed == render_yaml(GENERATED[name]), f"crds/{name} is stale: run `make crds`"


def _walk(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        found += _walk(sub, f"{path}.{name}")
    if "items" in node:
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_schema_is_structural(name: str) -> None:
    schema = GENERATED[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema, ""):
        assert "$ref" not in node and "anyOf" not in node and "title" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_every_spec_field_is_described(name: str) -> None:
    spec = GENERATED[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    undocumented = [
        path
        for path, node in _walk(spec, "spec")
        if not path.endswith("[]") and not path.endswith("{}") and not node.get("description")
    ]
    assert not undocumented, f"fields without description: {undocumented}"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_strings_are_bounded_for_cel_cost(name: str) -> None:
    spec = GENERATED[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for path, node in _walk(spec, "spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path} has no maxItems"


def test_names_columns_and_categories() -> None:
    columns = {k.kind: [c["name"] for c in k.columns if not c.get("priority")] for k in KINDS}
    assert columns == {
        "StreamJob": ["Version", "Active", "Phase", "Lag", "Age"],
        "ReplayRun": ["Job", "Version", "Phase", "Progress", "Lag", "ETA", "Age"],
        "MaterializedView": ["Backend", "Active", "Previous", "Age"],
    }
    for crd in GENERATED.values():
        names = crd["spec"]["names"]
        assert names["categories"] == ["kappa"]
        assert crd["spec"]["group"] == "kappa.dev"
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_kopf_bookkeeping_has_room_in_status() -> None:
    for crd in GENERATED.values():
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["properties"]["kopf"]["x-kubernetes-preserve-unknown-fields"] is True


def test_generated_yaml_round_trips() -> None:
    for name, crd in GENERATED.items():
        assert yaml.safe_load(render_yaml(crd)) == crd, name
