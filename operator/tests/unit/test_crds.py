"""The CRDs in manifests/crds/ and charts/kappa-operator/crds/ are exactly what the models generate, and are
shaped as Kubernetes requires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kappa.api.crd import CRD_DIRS, KINDS, all_crds
from kappa.cli.crds import render_yaml

ROOT = Path(__file__).resolve().parents[3]
GENERATED = all_crds()


@pytest.mark.parametrize("directory", CRD_DIRS)
@pytest.mark.parametrize("name", sorted(GENERATED))
def test_committed_crd_matches_the_models(directory: str, name: str) -> None:
    """Every copy: the kustomize base's and the Helm chart's."""
    committed = (ROOT / directory / name).read_text()
    assert committed == render_yaml(GENERATED[name]), f"{directory}/{name} is stale: run `make crds`"


def test_no_copy_holds_a_crd_the_models_do_not_generate() -> None:
    for directory in CRD_DIRS:
        assert sorted(p.name for p in (ROOT / directory).glob("*.yaml")) == sorted(GENERATED), directory


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


def test_the_admission_bounds_fit_every_derived_name_at_its_limit() -> None:
    """The bounds in the CRDs come from render/names.py: with every input at its bound, the longest name the
    operator derives exactly fits its own limit (so a bound is neither too loose nor tighter than needed)."""
    import re

    from kappa.adapters.job_runtime.session import RECORD_SUFFIX
    from kappa.api.base import (
        CANARY_SUFFIX,
        FLINK_DEPLOYMENT_NAME_MAX,
        KAFKA_TOPIC_MAX,
        LABEL_VALUE_MAX,
        MAX_JOB_PLUS_VERSION,
        MAX_REPLAY_JOB_PLUS_VERSION,
        MAX_TABLE_BASE,
        MAX_TOPIC_BASE,
        MAX_VERSION,
        MAX_VIEW_NAME,
        OBJECT_NAME_MAX,
        POSTGRES_IDENTIFIER_MAX,
        VIEW_CLAIM_SUFFIX,
    )
    from kappa.api.streamjob_status import StreamJobStatus
    from kappa.machines import session_job
    from kappa.render import names
    from kappa.render.flink import kafka_topic_name

    fko_name = re.compile(r"[a-z]([-a-z\d]{0,43}[a-z\d])?")  # FKO's DefaultValidator: Flink's cluster-id
    dns_1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
    version = "v" * MAX_VERSION
    canary = f"{version}{CANARY_SUFFIX}"  # how the StreamJob controller names the canary's version
    namespace = "n" * 63
    job = "j" * (MAX_JOB_PLUS_VERSION - MAX_VERSION)
    replay_job = "r" * (MAX_REPLAY_JOB_PLUS_VERSION - MAX_VERSION)

    deployments = {
        "canary": names.deployment_name(job, canary),
        "replay": names.deployment_name(replay_job, version),
    }
    for deployment in deployments.values():
        assert len(deployment) == FLINK_DEPLOYMENT_NAME_MAX and fko_name.fullmatch(deployment), deployment
        assert len(f"{deployment}-rest") <= 63  # FKO's REST Service, a DNS-1035 label
        assert len(f"{deployment}{RECORD_SUFFIX}") <= 253  # the session runtime's record ConfigMap
        assert len(f"{deployment}-final") <= 253  # the final FlinkStateSnapshot
    topic = names.output_topic("t" * MAX_TOPIC_BASE, canary)
    assert len(topic) == KAFKA_TOPIC_MAX
    assert dns_1123.fullmatch(kafka_topic_name(names.output_topic("a.b_c-d", canary)))
    table = names.output_table("t" * MAX_TABLE_BASE, canary)
    assert len(table.encode()) == POSTGRES_IDENTIFIER_MAX
    group = names.consumer_group(namespace, job, canary)
    assert len(group) <= StreamJobStatus.model_fields["consumer_group"].metadata[0].max_length
    assert len(names.transactional_id_prefix(namespace, job, canary)) == len(group)
    assert len(job) <= LABEL_VALUE_MAX and len(replay_job) <= LABEL_VALUE_MAX  # label kappa.dev/job
    assert len(f"{'m' * MAX_VIEW_NAME}{VIEW_CLAIM_SUFFIX}") == OBJECT_NAME_MAX  # a view's claim Lease
    # A session job's id is a fixed-length hash of its record, whatever the names: Flink's 32 hex digits.
    assert re.fullmatch(r"[0-9a-f]{32}", session_job.job_id("u" * 36, 999))
