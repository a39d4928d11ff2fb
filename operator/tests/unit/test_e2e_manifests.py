"""The e2e story's manifests (e2e/manifests/), which run only on kind with Docker (make e2e), checked
here where they can be: each kappa.dev object is a valid spec with no field the CRD would drop, and each
version's SQL renders into a FlinkDeployment (every ${KAPPA_*} it names is one the operator injects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.render.flink import Injection, StartupMode, flink_deployment

MANIFESTS = Path(__file__).resolve().parents[3] / "e2e" / "manifests"
MODELS: dict[str, type[BaseModel]] = {
    "StreamJob": StreamJobSpec,
    "ReplayRun": ReplayRunSpec,
    "MaterializedView": MaterializedViewSpec,
}


def objects() -> list[dict[str, Any]]:
    return [d for f in sorted(MANIFESTS.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def test_each_custom_resource_is_a_valid_spec_that_keeps_every_field() -> None:
    custom = [o for o in objects() if o["apiVersion"] == "kappa.dev/v1alpha1"]
    assert sorted(o["kind"] for o in custom) == ["MaterializedView", "ReplayRun", "StreamJob"]
    for obj in custom:
        spec = MODELS[obj["kind"]].model_validate(obj["spec"])
        # The models ignore unknown fields and the API server prunes them: a field that does not round-trip
        # would silently not reach the operator.
        assert spec.model_dump(by_alias=True, exclude_unset=True, mode="json") == obj["spec"], obj["kind"]


def test_v1_and_the_replayed_v2_render_into_flinkdeployments_with_savepoints_on_the_hostpath() -> None:
    by_kind = {o["kind"]: o for o in objects()}
    job = StreamJobSpec.model_validate(by_kind["StreamJob"]["spec"])
    run = ReplayRunSpec.model_validate(by_kind["ReplayRun"]["spec"])
    assert run.job_ref.name == by_kind["StreamJob"]["metadata"]["name"]
    assert run.overrides is not None and run.overrides.sql
    replayed = job.model_copy(update={"flink": job.flink.model_copy(update={"sql": run.overrides.sql})})
    cases: list[tuple[str, StreamJobSpec, StartupMode]] = [
        ("v1", job, "earliest-offset"),
        ("v2", replayed, "group-offsets"),
    ]
    for version, spec, mode in cases:
        injection = Injection(
            version=version,
            group_id=f"kappa-e2e.enrich.{version}",
            transactional_id_prefix=f"kappa-e2e.enrich.{version}",
            bootstrap_servers="events-kafka-bootstrap.kafka.svc:9092",
            startup_mode=mode,
            output_topic=f"clicks-enriched.{version}",
        )
        fd = flink_deployment(
            namespace="kappa-e2e", job="enrich", owner_uid="uid", spec=spec, injection=injection
        )
        args = " ".join(fd["spec"]["job"]["args"])
        assert "${" not in args
        assert f"'topic' = 'clicks-enriched.{version}'" in args
        assert fd["spec"]["flinkConfiguration"]["execution.checkpointing.savepoint-dir"].startswith(
            "file:///flink-data/"
        )
        (container,) = fd["spec"]["podTemplate"]["spec"]["containers"]
        assert container["volumeMounts"] == [{"name": "flink-data", "mountPath": "/flink-data"}]
    assert "UPPER(url)" in " ".join(job.flink.sql or [])  # v1's bug
    assert "UPPER(url)" not in " ".join(run.overrides.sql)  # v2's fix
