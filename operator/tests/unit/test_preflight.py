"""The retention preflight, table-driven: each check with its reason."""

from __future__ import annotations

import pytest

from kappa.machines.preflight import (
    PartitionFacts,
    ReplayPlan,
    TopicFacts,
    fell_off_retention,
    preflight,
)

NOW = 10_000_000_000
HOUR = 3_600_000
TOPICS = {"clicks": TopicFacts("clicks", 2, "delete", retention_ms=24 * HOUR)}


def parts(start: int = 0, log_start: int = 0, end: int = 1_000_000, age_ms: int = 0) -> dict:
    return {("clicks", p): PartitionFacts(log_start, end, start, NOW - age_ms) for p in range(2)}


@pytest.mark.parametrize(
    ("case", "topics", "partitions", "plan", "check", "severity", "reason"),
    [
        ("start retained", TOPICS, parts(), ReplayPlan(1000), "StartRetained", "OK", "StartRetained"),
        (
            "start deleted",
            TOPICS,
            parts(start=5, log_start=9),
            ReplayPlan(1000),
            "StartRetained",
            "Error",
            "StartDeletedByRetention",
        ),
        (
            "compacted",
            {"clicks": TopicFacts("clicks", 2, "compact,delete")},
            parts(),
            ReplayPlan(1000),
            "SourceNotCompacted",
            "Warning",
            "CompactedSource",
        ),
        # 2M records at 1000/s = 2000 s; 2x margin = 4000 s; start is 23h old of 24h: 3600 s left.
        (
            "outruns retention",
            TOPICS,
            parts(age_ms=23 * HOUR),
            ReplayPlan(1000),
            "FitsRetention",
            "Error",
            "ReplayOutrunsRetention",
        ),
        (
            "fits retention",
            TOPICS,
            parts(age_ms=22 * HOUR),
            ReplayPlan(1000),
            "FitsRetention",
            "OK",
            "FitsRetention",
        ),
        ("no rate", TOPICS, parts(), ReplayPlan(None), "FitsRetention", "Warning", "NoPlannedRate"),
        (
            "infinite retention",
            {"clicks": TopicFacts("clicks", 2, "delete", retention_ms=-1)},
            parts(),
            ReplayPlan(1),
            "FitsRetention",
            "OK",
            "UnlimitedRetention",
        ),
        (
            "output taken",
            TOPICS,
            parts(),
            ReplayPlan(1000, "sessions.v2", True),
            "OutputFree",
            "Error",
            "OutputExists",
        ),
        (
            "output free",
            TOPICS,
            parts(),
            ReplayPlan(1000, "sessions.v2", False),
            "OutputFree",
            "OK",
            "OutputFree",
        ),
    ],
)
def test_checks(
    case: str, topics: dict, partitions: dict, plan: ReplayPlan, check: str, severity: str, reason: str
) -> None:
    result = preflight(topics, partitions, plan, NOW)
    found = {c.name: c for c in result.checks}[check]
    assert (found.severity, found.reason) == (severity, reason), found.message
    assert result.passed == all(c.severity != "Error" for c in result.checks)


def test_the_deleted_start_names_partitions_and_offsets() -> None:
    result = preflight(TOPICS, parts(start=5, log_start=9), ReplayPlan(1000), NOW)
    assert "clicks[0]: start 5 < log start 9" in result.failures()[0].message
    assert "clicks[1]: start 5 < log start 9" in result.failures()[0].message


def test_fell_off_retention() -> None:
    committed = {("c", 0): 10, ("c", 1): 50, ("c", 2): None}
    starts = {("c", 0): 20, ("c", 1): 20, ("c", 2): 20}
    assert fell_off_retention(committed, starts) == [(("c", 0), 10, 20)]
