"""Intake decides a first status: valid specs start reconciling, invalid ones stall with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from kappa.api.materializedview import MaterializedViewStatus
from kappa.api.replayrun import ReplayRunStatus
from kappa.api.streamjob_status import StreamJobStatus
from kappa.machines.intake import intake_materializedview, intake_replayrun, intake_streamjob

STATUS: dict[Any, Any] = {
    intake_streamjob: StreamJobStatus,
    intake_replayrun: ReplayRunStatus,
    intake_materializedview: MaterializedViewStatus,
}
"""Each intake reads its kind's status as the controllers load it: the wire form, parsed into the model."""

JOB: dict[str, Any] = {
    "version": "v1",
    "source": {"kafka": {"bootstrapServers": "k:9092"}, "topics": ["clicks"]},
    "output": {"table": {"base": "sessions"}},
    "flink": {"image": "img", "sql": ["SELECT 1"]},
}
RUN: dict[str, Any] = {"jobRef": {"name": "sessionizer"}, "version": "v2", "from": {"earliest": True}}
VIEW: dict[str, Any] = {"backend": {"type": "configMap", "configMap": {"name": "pointer"}}}


@pytest.mark.parametrize(
    ("intake", "spec", "status", "phase", "reason", "first_event"),
    [
        (intake_streamjob, JOB, {}, "Pending", "Pending", "Accepted"),
        (intake_streamjob, JOB, {"observedGeneration": 1, "phase": "Running"}, "Running", "Pending", None),
        (intake_replayrun, RUN, {}, "Pending", "Pending", "Accepted"),
        (intake_materializedview, VIEW, {}, None, "AwaitingFirstVersion", "Accepted"),
        (
            intake_materializedview,
            VIEW,
            {"activeVersion": "v1", "observedGeneration": 1},
            None,
            "Pending",
            None,
        ),
    ],
)
def test_valid_specs_start_reconciling(
    intake: Any,
    spec: dict[str, Any],
    status: dict[str, Any],
    phase: str | None,
    reason: str,
    first_event: str | None,
) -> None:
    decision = intake(spec, STATUS[intake].model_validate(status), 1)
    by_type = {c.type: c for c in decision.conditions}
    assert by_type["Reconciling"].status is True
    assert by_type["Reconciling"].reason == reason
    assert by_type["Stalled"].status is False
    assert decision.state["observedGeneration"] == 1
    assert decision.state.get("phase") == phase
    assert [e.reason for e in decision.events] == ([first_event] if first_event else [])


@pytest.mark.parametrize(
    ("intake", "spec", "field"),
    [
        (intake_streamjob, {**JOB, "version": "V1"}, "spec.version"),
        (intake_streamjob, {k: v for k, v in JOB.items() if k != "flink"}, "spec.flink"),
        (intake_replayrun, {**RUN, "from": {"earliest": False}}, "spec.from.earliest"),
        (intake_materializedview, {"backend": {"type": "opensearch"}}, "spec.backend.type"),
    ],
)
def test_an_invalid_spec_stalls_naming_the_field(intake: Any, spec: dict[str, Any], field: str) -> None:
    decision = intake(spec, STATUS[intake](), 4)
    by_type = {c.type: c for c in decision.conditions}
    assert by_type["Stalled"].status is True
    assert by_type["Stalled"].reason == "InvalidSpec"
    assert field in by_type["Stalled"].message
    assert decision.events[0].type == "Warning"
