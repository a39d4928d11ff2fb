"""Tracks the lag of many consumer groups with one batched poll per interval, keeps a sliding window per
partition for the Burrow-style evaluation, detects groups that fell off retention, and exports gauges.

A poll that fails is counted in kappa_lag_poll_errors_total every time, but logged only when polls start
failing and when they succeed again (see `Reachability`): a cluster that is down says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException

from kappa.adapters import metrics
from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.health import Reachability
from kappa.adapters.kafka.values import Partition
from kappa.machines.lag import (
    LagStatus,
    PartitionLag,
    PartitionWindow,
    Sample,
    Verdict,
    evaluate,
    group_lag,
    recount_first,
    within_partitions,
    worst,
)
from kappa.machines.preflight import fell_off_retention

log = logging.getLogger(__name__)

MARKER_RECOUNT_MAX = 1000
"""Partitions whose small-lag ranges one poll reads to recount (LagMonitor._without_markers): about 0.15 s
of a poll on the 2-core test machine (benchmarks/lag_poll.py)."""


@dataclass
class TrackedGroup:
    group: str
    topics: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    allowed_lag: int = 0
    windows: dict[Partition, PartitionWindow] = field(default_factory=dict)
    fell_off_logged: int = 0


@dataclass(frozen=True)
class GroupLag:
    group: str
    partitions: list[PartitionLag]
    verdicts: dict[Partition, Verdict]
    status: Verdict
    fell_off: list[tuple[Partition, int, int]]
    """(partition, committed, log start) where records were deleted before the group read them."""
    polled_at: float
    missing_topics: list[str] = field(default_factory=list)
    """Tracked topics that do not exist (yet): no lag can be measured for them."""

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def lag_of(self, topic: str, partition: int) -> int:
        return next(p.lag for p in self.partitions if (p.topic, p.partition) == (topic, partition))


class LagMonitor:
    """One poll = one round of concurrent requests for every tracked group: end offsets and log starts of all
    partitions (two ListOffsets rounds through the adapter's `OffsetReader`, in chunks, without a future per
    partition) and every group's committed offsets (one OffsetFetch per coordinator), then the small-lag
    recount of at most `marker_recount_max` partitions (`_without_markers`). benchmarks/lag_poll.py measures
    it at 1,000 and 10,000 partitions.
    """

    def __init__(
        self,
        admin: KafkaAdmin,
        *,
        window: int = 10,
        stop_after: float = 300.0,
        marker_check_max_lag: int = 10,
        marker_recount_max: int | None = MARKER_RECOUNT_MAX,
        partition_refresh: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.admin = admin
        self.window = window
        self.stop_after = stop_after
        self.marker_check_max_lag = marker_check_max_lag
        self.marker_recount_max = marker_recount_max
        self.partition_refresh = partition_refresh
        self.clock = clock
        self._groups: dict[str, TrackedGroup] = {}
        self._by_job: dict[tuple[str, str], set[str]] = {}
        """(namespace, job) -> its tracked groups, kept with _groups."""
        self._partitions: dict[str, list[Partition]] = {}
        self._missing: set[str] = set()
        self._partitions_at = 0.0
        self._marker_counts: dict[tuple[Partition, int, int], int] = {}
        self._marker_ranges: set[tuple[Partition, int, int]] = set()
        """The small-lag ranges of the last poll: one seen again has stayed put, and is recounted first."""
        self._latest: dict[str, GroupLag] = {}
        self._polls = Reachability(f"lag poll of {admin.bootstrap_servers}", failing="failing")

    def _polled(self, error: BaseException | None) -> None:
        transition = self._polls.observe(error is None, _describe(error) if error else "", self.clock())
        if transition is None:
            return
        if transition.down:
            # A Kafka error says all there is; anything else is a bug, worth its traceback once.
            trace = error if error is not None and not isinstance(error, KafkaException) else None
            log.warning("%s", transition.message, exc_info=trace)
        else:
            log.info("%s", transition.message)

    def track(
        self, group: str, topics: Iterable[str], *, labels: dict[str, str] | None = None, allowed_lag: int = 0
    ) -> None:
        topics = tuple(sorted(set(topics)))
        current = self._groups.get(group)
        if current and current.topics == topics:
            current.allowed_lag = allowed_lag
            return
        if current:
            self._unindex(current)
        tracked = self._groups[group] = TrackedGroup(group, topics, labels or {}, allowed_lag)
        self._by_job.setdefault(self._job_of(tracked), set()).add(group)
        self._partitions_at = 0.0  # new topics: refresh partition lists on the next poll

    def untrack(self, group: str) -> None:
        tracked = self._groups.pop(group, None)
        self._latest.pop(group, None)
        if tracked:
            self._unindex(tracked)
            metrics.group_lags.pop(self._label_values(tracked), None)  # its series go (none before a poll)

    def latest(self, group: str) -> GroupLag | None:
        return self._latest.get(group)

    @property
    def groups(self) -> list[str]:
        return sorted(self._groups)

    def tracks(self, group: str) -> bool:
        return group in self._groups

    def labels_of(self, group: str) -> dict[str, str]:
        """The labels a tracked group was tracked with ({} when it is not tracked)."""
        tracked = self._groups.get(group)
        return dict(tracked.labels) if tracked else {}

    def groups_of(self, namespace: str, job: str) -> list[str]:
        """The tracked groups of one job (labels `namespace` and `job`): looked up, not searched, since
        every look of every job asks (at 1,000 jobs a scan per look was a scan of 1,000 groups)."""
        return sorted(self._by_job.get((namespace, job), ()))

    @staticmethod
    def _job_of(tracked: TrackedGroup) -> tuple[str, str]:
        return tracked.labels.get("namespace", ""), tracked.labels.get("job", "")

    def _unindex(self, tracked: TrackedGroup) -> None:
        key = self._job_of(tracked)
        groups = self._by_job.get(key)
        if groups is not None:
            groups.discard(tracked.group)
            if not groups:
                del self._by_job[key]

    async def _partition_lists(self, now: float) -> dict[str, list[Partition]]:
        topics = sorted({t for g in self._groups.values() for t in g.topics})
        stale = now - self._partitions_at > self.partition_refresh
        if stale or any(t not in self._partitions and t not in self._missing for t in topics):
            found, missing = await self.admin.partitions_by_topic(topics)
            if set(missing) - self._missing:  # said once per topic that goes missing, not per refresh
                log.warning("tracked topic(s) missing, their groups report no lag: %s", ", ".join(missing))
            self._partitions, self._missing = found, set(missing)
            self._partitions_at = now
        return self._partitions

    async def poll(self) -> dict[str, GroupLag]:
        """Poll every tracked group once; returns and remembers each group's lag."""
        if not self._groups:
            return {}
        started = time.perf_counter()
        now = self.clock()
        # The groups as the poll starts: one tracked or untracked while it waits is for the next poll.
        groups = dict(self._groups)
        try:
            by_topic = await self._partition_lists(now)
            every = sorted({p for parts in by_topic.values() for p in parts})
            ends, starts, committed = await asyncio.gather(
                self.admin.end_offsets(every),
                self.admin.log_start_offsets(every),
                self.admin.committed_many(groups),
            )
            recounted = await self._without_markers(ends, committed)
            pending = self._marker_ranges - recounted.keys()
        except Exception as exc:
            metrics.lag_poll_errors.inc()
            self._polled(exc)
            raise
        self._polled(None)
        results: dict[str, GroupLag] = {}
        for name, tracked in groups.items():
            if self._groups.get(name) is not tracked:
                continue  # untracked (or tracked anew) while the poll waited: its series stay removed
            found = committed.get(name, {})
            result = self._group_lag(tracked, by_topic, ends, starts, found, recounted, pending, now)
            results[name] = result
            self._export(tracked, result)
        self._latest.update(results)
        metrics.lag_poll_seconds.observe(time.perf_counter() - started)
        return results

    def _group_lag(
        self,
        tracked: TrackedGroup,
        by_topic: dict[str, list[Partition]],
        ends: dict[Partition, int],
        starts: dict[Partition, int],
        committed: dict[Partition, int],
        recounted: dict[tuple[Partition, int, int], int],
        pending: set[tuple[Partition, int, int]],
        now: float,
    ) -> GroupLag:
        """One group's lag and verdicts from the poll's offsets; its windows take the new samples. A range
        still waiting for its recount gives no sample: its lag counts a marker or a few too many, and a
        reader parked at the end would read STALL until it is recounted."""
        parts = [p for t in tracked.topics for p in by_topic.get(t, [])]
        lags = group_lag({p: ends[p] for p in parts if p in ends}, committed, starts, recounted)
        verdicts: dict[Partition, Verdict] = {}
        windows = tracked.windows
        for pl in lags:
            key = (pl.topic, pl.partition)
            window = windows.get(key)
            if window is None:
                window = windows[key] = PartitionWindow(size=self.window)
            if (key, pl.committed, pl.end) not in pending:
                window.add(Sample(now, pl.committed, pl.lag))
            verdicts[key] = evaluate(
                window, now=now, allowed_lag=tracked.allowed_lag, stop_after=self.stop_after
            )
        fell_off = fell_off_retention({p: committed[p] for p in parts if p in committed}, starts)
        missing = sorted(t for t in tracked.topics if t in self._missing)
        return GroupLag(tracked.group, lags, verdicts, worst(verdicts.values()), fell_off, now, missing)

    async def _without_markers(
        self, ends: dict[Partition, int], committed: dict[str, dict[Partition, int]]
    ) -> dict[tuple[Partition, int, int], int]:
        """A transactional commit marker takes an offset but is no record: a reader that committed after the
        last record shows lag 1 forever. For small lags, count the records that are really left:
        (partition, committed, end) -> records. A range counted once is not read again while it stays.

        At most `marker_recount_max` partitions are read in one poll, so that a poll that finds every range
        new (the first after a start, or all moved at once) stays as short as the others: the rest are read
        in the next polls, and until then their lag is `end - committed`, a marker or a few too many. Ranges
        that stayed put since the last poll go first: a reader still moving passes its markers anyway, and
        one parked just after a commit is the one whose lag would otherwise read 1 for good."""
        ranges: set[tuple[Partition, int, int]] = set()
        for offsets in committed.values():
            for part, offset in offsets.items():
                end = ends.get(part)
                if end is not None and 0 < end - offset <= self.marker_check_max_lag:
                    ranges.add((part, offset, end))
        counts = self._marker_counts
        todo = recount_first([key for key in ranges if key not in counts], self._marker_ranges)
        self._marker_ranges = ranges
        if self.marker_recount_max is not None:
            todo = within_partitions(todo, self.marker_recount_max)
        if todo:
            # One read of every partition at once, from the lowest committed offset to the end (groups at
            # different offsets of one partition share it): a handful of records each, small lags only.
            spans: dict[Partition, tuple[int, int]] = {}
            for part, offset, end in todo:
                low, _ = spans.get(part, (offset, end))
                spans[part] = (min(low, offset), end)
            found = await self.admin.record_offsets(spans)
            for part, offset, end in todo:
                counts[(part, offset, end)] = sum(1 for o in found[part] if offset <= o < end)
        if len(counts) > len(ranges):  # forget the ranges no group is in any more
            self._marker_counts = counts = {key: counts[key] for key in ranges}
        return counts

    @staticmethod
    def _label_values(tracked: TrackedGroup) -> tuple[str, ...]:
        return (
            tracked.labels.get("namespace", ""),
            tracked.labels.get("job", ""),
            tracked.labels.get("version", ""),
            tracked.group,
        )

    def _export(self, tracked: TrackedGroup, result: GroupLag) -> None:
        metrics.group_lags[self._label_values(tracked)] = metrics.GroupLagSeries(
            result.partitions, result.total, int(result.status.status), len(result.fell_off)
        )
        if len(result.fell_off) != tracked.fell_off_logged:  # when it changes, not on every poll
            tracked.fell_off_logged = len(result.fell_off)
            if result.fell_off:
                log.warning(
                    "group %s fell off retention on %d partition(s)", tracked.group, len(result.fell_off)
                )

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Poll every `interval` seconds until `stop` is set; a failed poll is retried (and logged by poll()
        when polls start failing)."""
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def _describe(error: BaseException) -> str:
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        return str(error.args[0].str())
    return f"{type(error).__name__}: {error}"


__all__ = ["GroupLag", "LagMonitor", "LagStatus", "TrackedGroup"]
