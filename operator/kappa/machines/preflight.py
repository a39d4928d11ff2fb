"""Retention preflight for a planned replay: is the start still retained and not in the future, does a
bounded replay end at or after its start, does the replay fit retention with a 2x margin, is the source
compacted, is the output name free. Pure: the Kafka adapter gathers facts, the controller passes `now`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Partition = tuple[str, int]
Severity = Literal["OK", "Warning", "Error"]
RETENTION_MARGIN = 2.0


@dataclass(frozen=True)
class TopicFacts:
    name: str
    partitions: int
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * 24 * 3600 * 1000  # -1 keeps forever
    retention_bytes: int = -1


@dataclass(frozen=True)
class PartitionFacts:
    log_start: int
    end: int
    start: int
    """The planned start offset of the replay on this partition."""
    start_timestamp_ms: int | None = None
    """Timestamp of the record at `start`, when known: how close it is to being deleted by time retention."""


@dataclass(frozen=True)
class ReplayPlan:
    records_per_second: float | None
    output_topic: str | None = None
    output_exists: bool = False
    end: Mapping[Partition, int] | None = None
    """A bounded replay's end offsets, resolved: spec.until.offsets, or those at spec.until.timestamp."""
    end_field: str = "spec.until"
    """The field the end came from, to name it when it lies before the start."""


@dataclass(frozen=True)
class Check:
    name: str
    severity: Severity
    reason: str
    message: str

    @property
    def passed(self) -> bool:
        return self.severity != "Error"


@dataclass(frozen=True)
class Preflight:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def _fmt(part: Partition) -> str:
    return f"{part[0]}[{part[1]}]"


def check_start_retained(partitions: Mapping[Partition, PartitionFacts]) -> Check:
    lost = [(p, f) for p, f in sorted(partitions.items()) if f.start < f.log_start]
    if lost:
        detail = ", ".join(f"{_fmt(p)}: start {f.start} < log start {f.log_start}" for p, f in lost)
        return Check(
            "StartRetained",
            "Error",
            "StartDeletedByRetention",
            f"the start position is no longer in the log on {len(lost)} partition(s): {detail}",
        )
    return Check(
        "StartRetained",
        "OK",
        "StartRetained",
        f"the start position is retained on all {len(partitions)} partition(s)",
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def check_start_not_in_future(from_timestamp_ms: int, now_ms: int) -> Check:
    """A start in the future has nothing to replay yet: the run would seed its group at the head, replay
    nothing and fail validation later, after creating a group, an output and a deployment. CEL has no clock,
    so this is refused here, before the start is resolved against Kafka."""
    if from_timestamp_ms > now_ms:
        return Check(
            "StartTime",
            "Error",
            "StartInFuture",
            f"spec.from.timestamp {_iso(from_timestamp_ms)} is in the future (now {_iso(now_ms)}): there is "
            "nothing to replay from there yet; use a time in the past, or spec.from.earliest",
        )
    return Check("StartTime", "OK", "StartInPast", f"spec.from.timestamp {_iso(from_timestamp_ms)} is past")


def check_end_after_start(partitions: Mapping[Partition, PartitionFacts], plan: ReplayPlan) -> Check:
    """A bounded replay whose end lies before its start would read nothing and report success at 100 %."""
    end = plan.end or {}
    before = [(p, f.start, end[p]) for p, f in sorted(partitions.items()) if p in end and end[p] < f.start]
    if before:
        detail = ", ".join(f"{_fmt(p)}: end {e} < start {s}" for p, s, e in before)
        return Check(
            "EndAfterStart",
            "Error",
            "EndBeforeStart",
            f"{plan.end_field} lies before the start on {len(before)} partition(s): {detail}",
        )
    return Check("EndAfterStart", "OK", "EndAfterStart", f"{plan.end_field} is at or after the start")


def check_not_compacted(topics: Mapping[str, TopicFacts]) -> Check:
    compacted = sorted(t.name for t in topics.values() if "compact" in t.cleanup_policy)
    if compacted:
        return Check(
            "SourceNotCompacted",
            "Warning",
            "CompactedSource",
            f"compacted topic(s) {', '.join(compacted)} hold a snapshot per key, not the full history",
        )
    return Check("SourceNotCompacted", "OK", "DeleteRetention", "no source topic is compacted")


def estimated_seconds(partitions: Mapping[Partition, PartitionFacts], records_per_second: float) -> float:
    records = sum(max(0, f.end - max(f.start, f.log_start)) for f in partitions.values())
    return records / records_per_second


def check_fits_retention(
    topics: Mapping[str, TopicFacts],
    partitions: Mapping[Partition, PartitionFacts],
    plan: ReplayPlan,
    now_ms: int,
) -> Check:
    finite = {
        t.name: t.retention_ms
        for t in topics.values()
        if t.retention_ms >= 0 and "delete" in t.cleanup_policy
    }
    if not finite:
        return Check("FitsRetention", "OK", "UnlimitedRetention", "no source topic deletes by time")
    if not plan.records_per_second:
        return Check(
            "FitsRetention",
            "Warning",
            "NoPlannedRate",
            "no throttle, so no planned rate: the replay duration cannot be estimated",
        )
    duration_s = estimated_seconds(partitions, plan.records_per_second)
    tightest: tuple[float, Partition] | None = None
    for part, facts in partitions.items():
        retention = finite.get(part[0])
        if retention is None:
            continue
        age_ms = now_ms - facts.start_timestamp_ms if facts.start_timestamp_ms is not None else 0
        remaining_s = (retention - age_ms) / 1000
        if tightest is None or remaining_s < tightest[0]:
            tightest = (remaining_s, part)
    if tightest is None:
        return Check("FitsRetention", "OK", "UnlimitedRetention", "no replayed partition deletes by time")
    remaining_s, part = tightest
    needed = RETENTION_MARGIN * duration_s
    message = (
        f"estimated replay {duration_s:.0f}s at {plan.records_per_second:g} records/s; "
        f"{_fmt(part)} keeps its start for {max(remaining_s, 0):.0f}s more (needs {needed:.0f}s, 2x margin)"
    )
    if needed > remaining_s:
        return Check("FitsRetention", "Error", "ReplayOutrunsRetention", message)
    return Check("FitsRetention", "OK", "FitsRetention", message)


def check_output_free(plan: ReplayPlan) -> Check:
    if plan.output_topic and plan.output_exists:
        return Check(
            "OutputFree",
            "Error",
            "OutputExists",
            f"output topic {plan.output_topic} already exists; a replay never reuses an output",
        )
    return Check("OutputFree", "OK", "OutputFree", f"output {plan.output_topic or '(none)'} is free")


def preflight(
    topics: Mapping[str, TopicFacts],
    partitions: Mapping[Partition, PartitionFacts],
    plan: ReplayPlan,
    now_ms: int,
) -> Preflight:
    checks = [check_start_retained(partitions)]
    if plan.end is not None:
        checks.append(check_end_after_start(partitions, plan))
    checks += [
        check_not_compacted(topics),
        check_fits_retention(topics, partitions, plan, now_ms),
        check_output_free(plan),
    ]
    return Preflight(tuple(checks))


def fell_off_retention(
    committed: Mapping[Partition, int | None], log_starts: Mapping[Partition, int]
) -> list[tuple[Partition, int, int]]:
    """Partitions whose committed offset is behind the log start: records were deleted before being read.

    Returned as (partition, committed, log start). Never let auto.offset.reset paper over this.
    """
    return [
        (part, offset, log_starts[part])
        for part, offset in sorted(committed.items())
        if offset is not None and offset >= 0 and part in log_starts and offset < log_starts[part]
    ]
