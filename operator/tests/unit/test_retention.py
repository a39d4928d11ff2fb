"""Nothing piles up (machines/retention.py): which savepoints are disposed of, which outputs are removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kappa.api.streamjob_status import SavepointRecord, VersionHistoryEntry
from kappa.machines.retention import (
    DISPOSING,
    MAX_SAVEPOINTS,
    OutputVersion,
    Removal,
    plan_savepoints,
    protected_savepoints,
    removable_outputs,
    superseded_times,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def sp(version: str, n: int, reason: str = "Upgrade") -> SavepointRecord:
    return SavepointRecord.model_validate(
        {
            "version": version,
            "path": f"s3://sp/{version}-{n}",
            "takenAt": "2026-11-28T08:00:00Z",
            "reason": reason,
        }
    )


# One savepoint per upgrade v1→v2→…→v6: the entry of vN was taken when vN+1 replaced it.
UPGRADES = [sp(f"v{i}", 1) for i in range(1, 6)]


@pytest.mark.parametrize(
    ("case", "entries", "keep", "kwargs", "disposed"),
    [
        ("within the bound: nothing goes", UPGRADES, 5, {}, []),
        (
            "beyond the bound: the oldest unprotected go",
            UPGRADES,
            3,
            {"deployed": ["v6", "v5"], "previous": "v5"},
            ["s3://sp/v1-1", "s3://sp/v2-1"],
        ),
        (
            "the upgrade's savepoint stays, the next oldest goes instead",
            UPGRADES,
            3,
            {"upgrade_savepoint": "s3://sp/v1-1", "deployed": ["v6"]},
            ["s3://sp/v2-1", "s3://sp/v3-1"],
        ),
        (
            "a Final savepoint stays",
            [sp("v1", 1, "Final"), *UPGRADES[1:]],
            2,
            {"deployed": ["v6"]},
            ["s3://sp/v2-1", "s3://sp/v3-1", "s3://sp/v4-1"],
        ),
        (
            "the newest savepoint of a deployed version (suspended for rollback) stays",
            [sp("v1", 1), sp("v1", 2), sp("v2", 1), sp("v3", 1)],
            1,
            {"deployed": ["v1", "v4"]},
            ["s3://sp/v1-1", "s3://sp/v2-1"],
        ),
        (
            "the previous version's rollback savepoint stays, deployed or not",
            [sp("v1", 1), sp("v2", 1), sp("v3", 1)],
            1,
            {"previous": "v2"},
            ["s3://sp/v1-1"],
        ),
        (
            "a path a ReplayRun names stays",
            UPGRADES,
            1,
            {"named": ["s3://sp/v1-1", "s3://sp/v2-1", "s3://sp/v3-1"]},
            ["s3://sp/v4-1"],
        ),
        ("the newest entry always stays", UPGRADES, 0, {}, [e.path for e in UPGRADES[:4]]),
        (
            "a disposal decided earlier goes on and does not count against the bound",
            [sp("v1", 1, DISPOSING), *UPGRADES[1:]],
            3,
            {"deployed": ["v6"]},
            ["s3://sp/v1-1", "s3://sp/v2-1"],
        ),
        (
            "a decided disposal whose path became protected is not carried out",
            [sp("v1", 1, DISPOSING), *UPGRADES[1:]],
            10,
            {"upgrade_savepoint": "s3://sp/v1-1"},
            [],
        ),
    ],
)
def test_savepoints_beyond_the_bound_are_disposed_of_unless_protected(
    case: str, entries: list[SavepointRecord], keep: int, kwargs: dict[str, Any], disposed: list[str]
) -> None:
    protected = protected_savepoints(
        entries,
        upgrade_savepoint=kwargs.get("upgrade_savepoint"),
        deployed=kwargs.get("deployed", []),
        previous=kwargs.get("previous"),
        named=kwargs.get("named", []),
    )
    plan = plan_savepoints(entries, keep=keep, protected=protected)
    assert [e.path for e in plan.dispose] == disposed, case
    assert [e.path for e in plan.kept] == [e.path for e in entries], "forgotten only once disposed"
    assert all(e.reason == DISPOSING for e in plan.kept if e.path in disposed)
    assert not plan.forgotten


def test_the_list_never_exceeds_the_crds_max_items_and_says_what_it_forgot() -> None:
    entries = [sp("v1", 1, "Final")] + [sp(f"v{i}", 1, DISPOSING) for i in range(2, 40)] + [sp("v40", 1)]
    plan = plan_savepoints(entries, keep=24, protected={"s3://sp/v1-1", "s3://sp/v40-1"})
    assert len(plan.kept) == MAX_SAVEPOINTS
    assert [e.path for e in plan.forgotten] == [f"s3://sp/v{i}-1" for i in range(2, 10)]
    assert plan.kept[0].path == "s3://sp/v1-1" and plan.kept[-1].path == "s3://sp/v40-1"


AN_HOUR_AGO = NOW - timedelta(hours=1)
JUST_NOW = NOW - timedelta(seconds=5)


def ov(
    version: str, state: str, superseded: datetime | None = AN_HOUR_AGO, physical: str | None = None
) -> OutputVersion:
    return OutputVersion(version, physical or f"sessions_{version}", state, superseded)


@pytest.mark.parametrize(
    ("case", "versions", "kwargs", "removed"),
    [
        (
            "retired beyond retainVersions, window over: removed",
            [ov("v1", "Retired"), ov("v2", "Previous"), ov("v3", "Active", None)],
            {},
            [Removal("sessions_v1", ("v1",))],
        ),
        (
            "deletionPolicy Retain: nothing",
            [ov("v1", "Retired"), ov("v2", "Previous"), ov("v3", "Active", None)],
            {"deletion_policy": "Retain"},
            [],
        ),
        (
            "rollback window not over yet: stays",
            [ov("v1", "Retired", JUST_NOW), ov("v2", "Previous"), ov("v3", "Active", None)],
            {},
            [],
        ),
        (
            "never active (no time known): stays",
            [ov("v1", "Retired", None), ov("v2", "Previous"), ov("v3", "Active", None)],
            {},
            [],
        ),
        (
            "the newest retired within retainVersions stays, an older one goes",
            [ov("v1", "Retired"), ov("v2", "Retired"), ov("v3", "Active", None)],
            {"retain": 2},
            [Removal("sessions_v1", ("v1",))],
        ),
        (
            "active and previous never go, even beyond retainVersions",
            [ov("v1", "Retired"), ov("v2", "Previous"), ov("v3", "Active", None)],
            {"retain": 1},
            [Removal("sessions_v1", ("v1",))],
        ),
        (
            "protected (deployed, or named by a running ReplayRun): stays",
            [ov("v1", "Retired"), ov("v2", "Retired"), ov("v3", "Active", None)],
            {"protected": ["v1"]},
            [Removal("sessions_v2", ("v2",))],
        ),
        (
            "what the view reads: stays, whatever the status says",
            [ov("v1", "Retired"), ov("v2", "Retired"), ov("v3", "Active", None)],
            {"reads": ["sessions_v1"]},
            [Removal("sessions_v2", ("v2",))],
        ),
        (
            "lineage: v2 continued v1's output, and v2 is previous: v1's output stays",
            [ov("v1", "Retired"), ov("v2", "Previous", physical="sessions_v1"), ov("v3", "Active", None)],
            {},
            [],
        ),
        (
            "lineage: a shared output goes when every version writing it may go",
            [
                ov("v1", "Retired"),
                ov("v2", "Retired", physical="sessions_v1"),
                ov("v3", "Previous"),
                ov("v4", "Active", None),
            ],
            {},
            [Removal("sessions_v1", ("v1", "v2"))],
        ),
        (
            "building versions stay",
            [ov("v1", "Retired"), ov("v2", "Active", None), ov("v3", "Building", None)],
            {},
            [Removal("sessions_v1", ("v1",))],
        ),
    ],
)
def test_outputs_of_retired_versions_go_only_when_nothing_may_need_them(
    case: str, versions: list[OutputVersion], kwargs: dict[str, Any], removed: list[Removal]
) -> None:
    args: dict[str, Any] = {
        "retain": 1,
        "deletion_policy": "Delete",
        "window": timedelta(seconds=20),
        "now": NOW,
    } | kwargs
    assert removable_outputs(versions, **args) == removed, case


def test_superseded_times_take_the_last_time_a_version_stopped_being_active() -> None:
    history = [
        {"version": "v1", "outcome": "Active", "at": "2026-11-28T08:00:00Z"},
        {"version": "v1", "outcome": "Superseded", "at": "2026-11-28T08:10:00Z"},
        {"version": "v1", "outcome": "Active", "at": "2026-11-28T08:20:00Z"},
        {"version": "v1", "outcome": "Superseded", "at": "2026-11-28T08:30:00Z"},
    ]
    typed = [VersionHistoryEntry.model_validate(entry) for entry in history]  # as status.history is read
    assert superseded_times(typed) == {"v1": datetime(2026, 11, 28, 8, 30, tzinfo=UTC)}
