"""The retention preflight, table-driven: each check with its reason."""

from __future__ import annotations

import pytest

from kappa.machines.preflight import (
    PartitionFacts,
    ReplayPlan,
    TopicFacts,
    check_start_not_in_future,
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


@pytest.mark.parametrize(
    ("case", "start", "end", "severity", "reason"),
    [
        ("end before start", 500, {("clicks", 0): 600, ("clicks", 1): 499}, "Error", "EndBeforeStart"),
        ("end at start", 500, {("clicks", 0): 500, ("clicks", 1): 500}, "OK", "EndAfterStart"),
        ("end after start", 500, {("clicks", 0): 501, ("clicks", 1): 900}, "OK", "EndAfterStart"),
        ("end on one partition only", 500, {("clicks", 1): 400}, "Error", "EndBeforeStart"),
    ],
)
def test_a_bounded_end_before_its_start_is_refused_naming_the_field(
    case: str, start: int, end: dict, severity: str, reason: str
) -> None:
    plan = ReplayPlan(1000, end=end, end_field="spec.until.offsets")
    result = preflight(TOPICS, parts(start=start), plan, NOW)
    found = {c.name: c for c in result.checks}["EndAfterStart"]
    assert (found.severity, found.reason) == (severity, reason), found.message
    assert found.message.startswith("spec.until.offsets")
    if severity == "Error":
        assert not result.passed
        assert "clicks[1]: end" in found.message and "< start 500" in found.message


def test_a_live_replay_has_no_end_to_check() -> None:
    result = preflight(TOPICS, parts(), ReplayPlan(1000), NOW)
    assert "EndAfterStart" not in {c.name for c in result.checks}


@pytest.mark.parametrize(
    ("offset_ms", "severity", "reason"),
    [
        (1, "Error", "StartInFuture"),
        (24 * HOUR, "Error", "StartInFuture"),
        (0, "OK", "StartInPast"),
        (-HOUR, "OK", "StartInPast"),
    ],
)
def test_a_start_timestamp_in_the_future_is_refused_naming_the_field(
    offset_ms: int, severity: str, reason: str
) -> None:
    check = check_start_not_in_future(NOW + offset_ms, NOW)
    assert (check.severity, check.reason) == (severity, reason)
    assert check.message.startswith("spec.from.timestamp ")
