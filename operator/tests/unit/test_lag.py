"""Lag arithmetic and the Burrow-style verdicts, table-driven."""

from __future__ import annotations

import pytest

from kappa.machines.lag import (
    LagStatus,
    PartitionWindow,
    Sample,
    Verdict,
    evaluate,
    group_lag,
    partition_lag,
    recount_first,
    within_partitions,
    worst,
)


@pytest.mark.parametrize(
    ("end", "committed", "log_start", "lag"),
    [
        (100, 60, 0, 40),
        (100, 100, 0, 0),
        (100, 120, 0, 0),  # committed ahead of a stale end: floored
        (100, None, 30, 70),  # no commit: everything retained is behind
        (100, -1, 0, 100),
    ],
)
def test_partition_lag(end: int, committed: int | None, log_start: int, lag: int) -> None:
    assert partition_lag(end, committed, log_start) == lag


def test_group_lag_is_per_partition_and_sorted() -> None:
    lags = group_lag({("b", 0): 5, ("a", 1): 10, ("a", 0): 3}, {("a", 0): 3, ("a", 1): 4})
    assert [(p.topic, p.partition, p.lag) for p in lags] == [("a", 0, 0), ("a", 1, 6), ("b", 0, 5)]


def window(*samples: tuple[float, int | None, int], size: int = 10) -> PartitionWindow:
    w = PartitionWindow(size=size)
    for at, committed, lag in samples:
        w.add(Sample(at, committed, lag))
    return w


CASES = [
    ("empty window", window(), 0, LagStatus.OK),
    ("one sample lagging", window((0, 10, 50)), 0, LagStatus.OK),
    ("offset went backwards", window((0, 10, 5), (1, 8, 7)), 0, LagStatus.REWIND),
    ("within allowance", window((0, 10, 5), (1, 10, 5)), 5, LagStatus.OK),
    ("lag was zero in window", window((0, 10, 0), (1, 10, 3), (2, 10, 4)), 0, LagStatus.OK),
    ("unchanged while lagging", window((0, 10, 5), (1, 10, 6), (2, 10, 7)), 0, LagStatus.STALL),
    (
        "unchanged for longer than stop_after",
        window((0, 10, 5), (50, 10, 6), (100, 10, 7)),
        0,
        LagStatus.STOP,
    ),
    ("moving but lag never falls", window((0, 10, 5), (1, 12, 5), (2, 14, 6)), 0, LagStatus.WARN),
    ("moving and lag falls", window((0, 10, 9), (1, 15, 6), (2, 20, 3)), 0, LagStatus.OK),
]


@pytest.mark.parametrize(("name", "w", "allowed", "status"), CASES, ids=[c[0] for c in CASES])
def test_burrow_rules(name: str, w: PartitionWindow, allowed: int, status: LagStatus) -> None:
    now = w.samples[-1].at if w.samples else 0
    assert evaluate(w, now=now, allowed_lag=allowed, stop_after=60).status == status


def test_the_window_slides_and_remembers_when_the_offset_last_moved() -> None:
    w = window((0, 1, 9), (1, 2, 8), (2, 2, 8), (3, 2, 8), size=3)
    assert [s.at for s in w.samples] == [1, 2, 3]
    assert w.last_moved_at == 1


def test_the_worst_partition_decides() -> None:
    verdicts = [Verdict(LagStatus.OK, ""), Verdict(LagStatus.STALL, "x"), Verdict(LagStatus.WARN, "")]
    assert worst(verdicts).status == LagStatus.STALL
    assert worst([]).status == LagStatus.OK


A0, A1, B0 = ("a", 0), ("a", 1), ("b", 0)


@pytest.mark.parametrize(
    ("name", "todo", "before", "order"),
    [
        ("by partition when nothing stayed", [(B0, 3, 6), (A1, 1, 2), (A0, 4, 5)], set(), [A0, A1, B0]),
        ("a range that stayed put goes first", [(A0, 4, 5), (B0, 3, 6)], {(B0, 3, 6)}, [B0, A0]),
        ("the same partition, moved: not first", [(A0, 4, 5), (B0, 3, 6)], {(B0, 2, 6)}, [A0, B0]),
        (
            "stayed ones in partition order",
            [(B0, 3, 6), (A1, 1, 2), (A0, 4, 5)],
            {(B0, 3, 6), (A1, 1, 2)},
            [A1, B0, A0],
        ),
        ("nothing to recount", [], {(A0, 1, 2)}, []),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_ranges_that_stayed_put_are_recounted_first(
    name: str,
    todo: list[tuple[tuple[str, int], int, int]],
    before: set[tuple[tuple[str, int], int, int]],
    order: list[tuple[str, int]],
) -> None:
    assert [key[0] for key in recount_first(todo, before)] == order


@pytest.mark.parametrize(
    ("name", "limit", "kept"),
    [
        ("all fit", 3, [(A0, 1, 5), (A0, 3, 5), (A1, 2, 4), (B0, 0, 1)]),
        ("two partitions: both ranges of a0 and a1's", 2, [(A0, 1, 5), (A0, 3, 5), (A1, 2, 4)]),
        ("one partition: a0's two ranges, one read", 1, [(A0, 1, 5), (A0, 3, 5)]),
        ("none", 0, []),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_one_poll_recounts_at_most_its_limit_of_partitions(
    name: str, limit: int, kept: list[tuple[tuple[str, int], int, int]]
) -> None:
    todo = [(A0, 1, 5), (A0, 3, 5), (A1, 2, 4), (B0, 0, 1)]
    assert within_partitions(todo, limit) == kept
