"""kstatus conditions: one place computes them, and lastTransitionTime moves only on a status change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kappa.api.base import CommonStatus
from kappa.api.conditions import holds, merge_conditions, progressing, ready, stall_reason, stalled

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 21, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("updates", "expected"),
    [
        (progressing("Deploying", "m"), {"Ready": "False", "Reconciling": "True", "Stalled": "False"}),
        (ready("Running", "m"), {"Ready": "True", "Reconciling": "False", "Stalled": "False"}),
        (stalled("InvalidSpec", "m"), {"Ready": "False", "Reconciling": "False", "Stalled": "True"}),
    ],
)
def test_kstatus_triples(updates: list, expected: dict[str, str]) -> None:
    conds = merge_conditions([], updates, generation=3, now=T0)
    assert {c["type"]: c["status"] for c in conds} == expected
    assert [c["type"] for c in conds] == ["Ready", "Reconciling", "Stalled"]
    assert {c["observedGeneration"] for c in conds} == {3}
    assert {c["lastTransitionTime"] for c in conds} == {"2026-11-21T10:00:00Z"}


def test_transition_time_kept_when_status_unchanged_but_generation_moves() -> None:
    first = merge_conditions([], progressing("Deploying", "v1"), generation=1, now=T0)
    second = merge_conditions(first, progressing("Upgrading", "v2"), generation=2, now=T1)
    by_type = {c["type"]: c for c in second}
    assert by_type["Reconciling"]["lastTransitionTime"] == "2026-11-21T10:00:00Z"
    assert by_type["Reconciling"]["reason"] == "Upgrading"
    assert by_type["Reconciling"]["observedGeneration"] == 2


def test_transition_time_moves_when_status_changes() -> None:
    first = merge_conditions([], progressing("Deploying", "v1"), generation=1, now=T0)
    second = merge_conditions(first, ready("Running", "v1 running"), generation=1, now=T1)
    by_type = {c["type"]: c for c in second}
    assert by_type["Ready"]["lastTransitionTime"] == "2026-11-21T10:05:00Z"
    assert by_type["Ready"]["status"] == "True"


def test_domain_conditions_are_kept_after_kstatus_ones() -> None:
    from kappa.api.conditions import ConditionUpdate

    conds = merge_conditions(
        [], [*ready("Done", "m"), ConditionUpdate("CutOver", True, "Switched")], generation=1, now=T0
    )
    assert [c["type"] for c in conds] == ["Ready", "Reconciling", "Stalled", "CutOver"]


def test_conditions_read_from_a_typed_status_merge_as_their_written_form() -> None:
    written = merge_conditions([], stalled("AliasMoved", "repointed"), generation=1, now=T0)
    typed = CommonStatus.model_validate({"conditions": written}).conditions
    assert stall_reason(typed) == "AliasMoved"
    assert holds(typed, "Stalled") and not holds(typed, "Ready") and not holds(typed, "CutOver")
    assert merge_conditions(typed, [], generation=1, now=T1) == written  # read back, written unchanged
    again = merge_conditions(typed, ready("Serving", "v1"), generation=2, now=T1)
    assert again == merge_conditions(written, ready("Serving", "v1"), generation=2, now=T1)
    assert stall_reason(CommonStatus.model_validate({"conditions": again}).conditions) is None
