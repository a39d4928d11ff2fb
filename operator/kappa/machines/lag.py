"""Consumer lag: per-partition arithmetic and a Burrow-style evaluation over a sliding window of samples.

Burrow reads commit timestamps from __consumer_offsets; we see committed offsets only at poll times, so a
"commit" here is an observed change of the committed offset. That gives two horizons: an offset that has not
moved across the window is STALL, one that has not moved for `stop_after` is STOP.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

Partition = tuple[str, int]


class LagStatus(IntEnum):
    """Ordered by severity: a group is as bad as its worst partition."""

    OK = 0
    WARN = 1
    REWIND = 2
    STALL = 3
    STOP = 4


class PartitionLag(NamedTuple):
    """One partition's lag. A tuple, as `Sample` is."""

    topic: str
    partition: int
    end: int
    committed: int | None
    lag: int


def partition_lag(end: int, committed: int | None, log_start: int = 0) -> int:
    """end - committed, floored at 0. With no commit the whole retained partition is behind."""
    if committed is None or committed < 0:
        return max(0, end - log_start)
    return max(0, end - committed)


def group_lag(
    ends: Mapping[Partition, int],
    committed: Mapping[Partition, int | None],
    log_starts: Mapping[Partition, int] | None = None,
    recounted: Mapping[tuple[Partition, int, int], int] | None = None,
) -> list[PartitionLag]:
    """Lag of every partition in `ends`, in topic/partition order. `recounted` holds the records really
    left between a committed offset and the end, where they were counted: (partition, committed, end) -> n
    (transaction markers take offsets but are no records)."""
    starts = log_starts or {}
    counted = recounted or {}
    out = []
    for (t, p), end in sorted(ends.items()):
        offset = committed.get((t, p))
        lag = counted.get(((t, p), offset, end)) if offset is not None else None
        if lag is None:
            lag = partition_lag(end, offset, starts.get((t, p), 0))
        out.append(PartitionLag(t, p, end, offset, lag))
    return out


class Sample(NamedTuple):
    """One poll's view of a partition. A tuple of plain values: the garbage collector stops tracking it, and
    at 10,000 partitions the windows hold 100,000 of them."""

    at: float  # seconds, monotonic or epoch: only differences matter
    committed: int | None
    lag: int


@dataclass
class PartitionWindow:
    """The last samples of one partition of one group, and when its committed offset last moved."""

    size: int = 10
    samples: deque[Sample] = field(default_factory=deque)
    last_moved_at: float | None = None

    def add(self, sample: Sample) -> None:
        previous = self.samples[-1] if self.samples else None
        if previous is None or previous.committed != sample.committed:
            self.last_moved_at = sample.at
        self.samples.append(sample)
        while len(self.samples) > self.size:
            self.samples.popleft()


@dataclass(frozen=True)
class Verdict:
    status: LagStatus
    reason: str


def evaluate(window: PartitionWindow, *, now: float, allowed_lag: int = 0, stop_after: float) -> Verdict:
    """Burrow's rules, in order: REWIND, OK within allowance, OK if lag hit 0, STOP, STALL, WARN, else OK."""
    samples = window.samples
    if not samples:
        return Verdict(LagStatus.OK, "no samples yet")
    current = samples[-1]
    # Sorting is C: at 10,000 partitions a poll evaluates 10,000 windows.
    offsets = [s.committed for s in samples if s.committed is not None]
    if offsets != sorted(offsets):
        return Verdict(LagStatus.REWIND, "committed offset went backwards")
    if current.lag <= allowed_lag:
        return Verdict(LagStatus.OK, f"lag {current.lag} <= {allowed_lag}")
    lags = [s.lag for s in samples]
    if 0 in lags:
        return Verdict(LagStatus.OK, "lag was 0 within the window")
    if len(samples) < 2:
        return Verdict(LagStatus.OK, "one sample: not enough to judge a trend")
    unmoved = len(set(offsets)) <= 1
    if unmoved and window.last_moved_at is not None and now - window.last_moved_at >= stop_after:
        return Verdict(
            LagStatus.STOP, f"no commit for {now - window.last_moved_at:.0f}s while lagging {current.lag}"
        )
    if unmoved:
        return Verdict(LagStatus.STALL, f"committed offset unchanged while lagging {current.lag}")
    if lags == sorted(lags):
        return Verdict(LagStatus.WARN, f"offsets move but lag never falls ({lags[0]} → {lags[-1]})")
    return Verdict(LagStatus.OK, "lag is falling")


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """A group's status is its worst partition's."""
    return max(verdicts, key=lambda v: v.status, default=Verdict(LagStatus.OK, "no partitions"))


def recount_first(
    todo: list[tuple[Partition, int, int]], before: set[tuple[Partition, int, int]]
) -> list[tuple[Partition, int, int]]:
    """The ranges to recount in order: those that stayed put since the last poll first, then by partition."""
    return sorted(todo, key=lambda key: (key not in before, key))


def within_partitions(todo: list[tuple[Partition, int, int]], limit: int) -> list[tuple[Partition, int, int]]:
    """The leading ranges of `todo` that fall in its first `limit` partitions (one read of a partition
    serves every range in it)."""
    chosen: set[Partition] = set()
    kept = []
    for key in todo:
        if key[0] not in chosen:
            if len(chosen) >= limit:
                continue
            chosen.add(key[0])
        kept.append(key)
    return kept
