"""A status write that would change nothing is not sent: the check follows JSON merge patch (RFC 7386)."""

from __future__ import annotations

from typing import Any

import pytest

from kappa.api.base import apply_merge_patch, merge_patch_changes

CURRENT: dict[str, Any] = {
    "phase": "Running",
    "lag": 0,
    "upgrade": {"step": "Idle", "deadline": None, "savepoint": "s3://sp/1"},
    "deployments": [{"version": "v1", "jobState": "RUNNING"}],
    "conditions": [{"type": "Ready", "status": "True"}],
}


@pytest.mark.parametrize(
    ("patch", "changes"),
    [
        ({}, False),
        ({"phase": "Running", "lag": 0}, False),
        ({"lag": 0.0}, False),  # JSON has one number type
        ({"lag": 3}, True),
        ({"phase": "Suspended"}, True),
        ({"upgrade": {"step": "Idle"}}, False),  # objects merge: the other fields stay
        ({"upgrade": {"step": "Upgrading"}}, True),
        ({"upgrade": {"savepoint": None}}, True),  # null removes a field that is there
        ({"upgrade": {"overdue": None}}, False),  # ... and is a no-op for one that is not
        ({"missing": None}, False),
        ({"upgrade": {"deadline": None}}, True),  # a stored null is a present field (a removal changes it)
        ({"newField": {}}, True),  # an empty object is created
        ({"upgrade": {}}, False),
        ({"deployments": [{"version": "v1", "jobState": "RUNNING"}]}, False),  # lists are replaced whole
        ({"deployments": [{"version": "v1"}]}, True),
        ({"deployments": []}, True),
        ({"conditions": [{"type": "Ready", "status": "False"}]}, True),
        ({"phase": {"nested": 1}}, True),  # an object patched over a scalar replaces it
    ],
)
def test_a_merge_patch_changes_the_status_or_not(patch: dict[str, Any], changes: bool) -> None:
    assert merge_patch_changes(CURRENT, patch) is changes


def test_a_patch_on_no_status_yet_changes_it() -> None:
    assert merge_patch_changes({}, {"phase": "Pending"}) is True
    assert merge_patch_changes({}, {}) is False


def test_a_written_patch_is_applied_as_the_api_server_applies_it() -> None:
    """So that the next write of the same reconcile compares against what the server holds: a shallow update
    forgot the fields a nested patch leaves, and a later removal of one looked like no change."""
    status: dict[str, Any] = {"upgrade": {"step": "Suspending", "deadline": "t"}, "lag": 1}
    apply_merge_patch(status, {"upgrade": {"step": "Idle"}, "lag": None, "phase": "Running"})
    assert status == {"upgrade": {"step": "Idle", "deadline": "t"}, "phase": "Running"}
    assert merge_patch_changes(status, {"upgrade": {"deadline": None}}) is True
    apply_merge_patch(status, {"upgrade": {"deadline": None}, "phase": {"a": 1}})
    assert status == {"upgrade": {"step": "Idle"}, "phase": {"a": 1}}
