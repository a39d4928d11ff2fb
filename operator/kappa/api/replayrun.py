"""ReplayRun: replay the log into a new versioned output, catch up, validate, cut over, then keep
a rollback window."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from kappa.api.base import (
    Bounds,
    CommonStatus,
    Deadline,
    Duration,
    KappaModel,
    ObjectName,
    OutputTopic,
    SqlIdentifier,
    SqlStatement,
    TopicName,
    VersionName,
    at_most_one,
    cel,
    defaulted,
    exactly_one,
    validated,
)

ReplayPhase = Literal[
    "Pending",
    "Preflight",
    "Replaying",
    "CatchingUp",
    "Validating",
    "AwaitingApproval",
    "CuttingOver",
    "Observing",
    "Succeeded",
    "Failed",
    "Aborted",
    "RolledBack",
]


MAX_EXPLICIT_OFFSETS = 256
"""Partitions in from.offsets and until.offsets: admission compares the two lists pairwise, and the API server
bounds what a CEL rule may cost (1024 x 1024 pairs would be 12 times over)."""


class JobRef(KappaModel):
    name: ObjectName = Field(description="Name of a StreamJob in this namespace.")


class PartitionOffset(KappaModel):
    topic: TopicName = Field(description="Topic.")
    partition: int = Field(ge=0, le=100000, description="Partition number.")
    offset: int = Field(ge=0, description="Offset.")


class ReplayFrom(KappaModel):
    """Where the replay starts: exactly one of earliest, timestamp or offsets."""

    model_config = validated(
        cel(
            exactly_one(["earliest", "timestamp", "offsets"]),
            "exactly one start position must be set: earliest, timestamp or offsets",
        )
    )

    earliest: Literal[True] | None = Field(default=None, description="From the start of the retained log.")
    timestamp: datetime | None = Field(
        default=None, description="From the first record at or after this time."
    )
    offsets: list[PartitionOffset] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EXPLICIT_OFFSETS,
        description="From explicit offsets, per partition.",
    )


class ReplayUntil(KappaModel):
    """Where the replay ends: live (then cut over), or a bounded end (a sandbox backfill, no cutover)."""

    model_config = validated(
        cel(
            exactly_one(["live", "timestamp", "offsets"]),
            "exactly one end must be set: live, timestamp or offsets",
        )
    )

    live: Literal[True] | None = Field(default=None, description="Catch up with the head and cut over.")
    timestamp: datetime | None = Field(default=None, description="Stop at this time; no cutover.")
    offsets: list[PartitionOffset] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EXPLICIT_OFFSETS,
        description="Stop at these offsets; no cutover. Each at or after its partition's start.",
    )


class Overrides(KappaModel):
    """Changes to the StreamJob's Flink spec for the replayed version only."""

    image: str | None = Field(default=None, min_length=1, max_length=512, description="Container image.")
    args: list[str] | None = Field(default=None, max_length=64, description="Program arguments.")
    sql: list[SqlStatement] | None = Field(
        default=None, min_length=1, max_length=64, description="SQL statements, none empty."
    )
    parallelism: int | None = Field(default=None, ge=1, le=1024, description="Parallelism of the replay.")
    flink_configuration: dict[str, str] | None = Field(
        default=None, max_length=256, description="Flink config."
    )


class ReplayOutput(KappaModel):
    """The replay's versioned output. Derived from the StreamJob by default; never the active one."""

    topic: OutputTopic | None = Field(
        default=None, description="Output topic, lowercase; default `{base}.{version}`."
    )
    table: SqlIdentifier | None = Field(default=None, description="Output table; default `{base}_{version}`.")
    retention_ms: int | None = Field(
        default=None,
        ge=-1,
        description="retention.ms of the output topic; -1 (default for replays) keeps it forever, "
        "since replayed records keep their original timestamps.",
    )


class Throttle(KappaModel):
    """A read limit for the replay, in one unit: records or bytes per second."""

    model_config = validated(
        cel(
            "has(self.recordsPerSecond) || has(self.bytesPerSecond)",
            "a throttle needs a rate: set one of spec.throttle.recordsPerSecond or "
            "spec.throttle.bytesPerSecond",
            reason="FieldValueRequired",
        ),
        cel(
            at_most_one(["recordsPerSecond", "bytesPerSecond"]),
            "a throttle has one unit: set either recordsPerSecond or bytesPerSecond, not both",
        ),
        cel(
            "!has(self.burst) || has(self.recordsPerSecond) && self.burst >= self.recordsPerSecond"
            " || has(self.bytesPerSecond) && self.burst >= self.bytesPerSecond",
            "burst is in the throttle's unit and must be >= its rate",
            field_path=".burst",
        ),
    )

    records_per_second: int | None = Field(default=None, ge=1, description="Records per second.")
    bytes_per_second: int | None = Field(
        default=None, ge=1024, description="Bytes per second; enforced as a broker quota."
    )
    burst: int | None = Field(default=None, ge=1, description="Short burst allowance, in the same unit.")


class CatchUp(KappaModel):
    """When the replay counts as caught up with live."""

    model_config = validated(
        cel(
            "!has(self.stableFor) || !has(self.timeout)"
            " || duration(self.stableFor) <= duration(self.timeout)",
            "stableFor must be <= timeout",
            field_path=".stableFor",
        )
    )

    max_lag_records: int = Field(default=1000, ge=0, description="Lag allowed on every partition.")
    stable_for: Duration = Field(
        default="2m", description="How long lag must stay within bounds; 0s: caught up at the first look."
    )
    timeout: Deadline = Field(
        default="6h", description="Deadline for catching up once replaying ends; more than 0s."
    )


class SampleKeyDiff(KappaModel):
    sample_size: int = Field(default=1000, ge=1, le=1000000, description="Keys sampled from both versions.")
    max_mismatch_ratio: float = Field(default=0.0, ge=0, le=1, description="Share of keys allowed to differ.")
    ignore_columns: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Columns left out of the comparison, e.g. a column naming the version.",
    )


class SqlCheck(KappaModel):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9_-]+$", description="Check name.")
    query: str = Field(
        min_length=1,
        max_length=8192,
        description="A query returning one row with one boolean column; `{table}` is the new table.",
    )


class Validation(KappaModel):
    """Gates before cutover. A failed gate stops the run with the active version untouched."""

    count_ratio: Bounds = Field(
        default_factory=lambda: Bounds(min=0.99, max=1.01),
        description="New output count / active output count over the same input range.",
        json_schema_extra={"default": {"min": 0.99, "max": 1.01}},
    )
    sample_key_diff: SampleKeyDiff | None = Field(default=None, description="Compare a sample of keys.")
    sql: list[SqlCheck] = Field(
        default_factory=list, max_length=32, description="SQL checks (postgres views)."
    )
    no_data: Literal["Fail", "Pass"] = Field(
        default="Fail", description="Decision when there is nothing to compare."
    )
    timeout: Deadline = Field(default="30m", description="Deadline for validation; more than 0s.")


class Timeouts(KappaModel):
    """A deadline for every phase that has no other; each more than 0s."""

    pending: Deadline = Field(
        default="24h",
        description="How long the run waits for its StreamJob, or for another run to release the view, "
        "before it fails (nothing is created before).",
    )
    preflight: Deadline = Field(default="5m", description="Deadline for the preflight checks.")
    replaying: Deadline = Field(default="24h", description="Deadline for reaching the target offsets.")
    awaiting_approval: Deadline = Field(
        default="72h", description="How long a Manual run waits for kappa.dev/approve before failing."
    )
    cutting_over: Deadline = Field(default="5m", description="Deadline for the atomic alias switch.")
    cleanup: Deadline = Field(
        default="1h",
        description="How long an end state's cleanup (decommission, removal, switch back) is retried; then "
        "status.cleanup is Failed and the Stalled condition names what is left.",
    )


class ReplayRunSpec(KappaModel):
    """Replay history into a new version. Immutable once created; approve and abort are annotations."""

    job_ref: JobRef = Field(description="The StreamJob whose logic is replayed.")
    version: VersionName
    overrides: Overrides | None = Field(default=None, description="Changes for the replayed version.")
    from_: ReplayFrom = Field(alias="from")
    until: ReplayUntil = Field(
        default_factory=lambda: ReplayUntil(live=True),
        json_schema_extra={"default": {"live": True}},
    )
    output: ReplayOutput | None = Field(default=None, description="Output names; derived by default.")
    throttle: Throttle | None = Field(default=None, description="Read limit for the replay.")
    catch_up: CatchUp = defaulted(CatchUp, "Catch-up criteria.")
    validation: Validation = defaulted(Validation, "Validation gates before cutover.")
    approval: Literal["Automatic", "Manual"] = Field(
        default="Manual", description="Manual waits for `kappa.dev/approve` before cutover."
    )
    rollback_window: Duration = Field(
        default="30m",
        description="How long the previous version stays ready for rollback after cutover; 0s: it is "
        "decommissioned right after the cutover.",
    )
    timeouts: Timeouts = defaulted(Timeouts, "Deadlines of the other phases.")


class Progress(KappaModel):
    consumed: int | None = Field(default=None, ge=0, description="Records consumed so far.")
    target: int | None = Field(default=None, ge=0, description="Records to consume to reach the target.")
    percent: str | None = Field(default=None, max_length=8, description="Consumed / target, e.g. 42%.")
    records_per_second: float | None = Field(
        default=None, ge=0, description="Achieved read rate since the replay began."
    )
    eta: str | None = Field(default=None, max_length=32, description="Estimated time to target.")
    sampled_at: datetime | None = Field(
        default=None, description="Start of the window the rate is taken over."
    )
    sampled_consumed: int | None = Field(default=None, ge=0, description="`consumed` at sampledAt.")


class PartitionLag(KappaModel):
    topic: str = Field(max_length=249)
    partition: int = Field(ge=0)
    lag: int = Field(ge=0)


class Lag(KappaModel):
    total: int | None = Field(default=None, ge=0)
    evaluation: str | None = Field(default=None, max_length=16, description="OK, WARN, STALL, STOP, REWIND.")
    partitions: list[PartitionLag] = Field(default_factory=list, max_length=1024)


class CheckResult(KappaModel):
    name: str = Field(max_length=64)
    passed: bool
    reason: str = Field(max_length=128)
    message: str = Field(default="", max_length=2048)


class CutoverRecord(KappaModel):
    """Written as intent before the switch (requestedAt), completed after it (at)."""

    view: str = Field(max_length=253)
    from_version: str | None = Field(
        default=None, max_length=20, description="The compare-and-swap precondition."
    )
    to_version: str = Field(max_length=20)
    replaced_version: str | None = Field(
        default=None,
        max_length=20,
        description="The StreamJob version the cutover replaced; after a savepoint upgrade it writes the "
        "output of fromVersion.",
    )
    requested_at: datetime | None = None
    at: datetime | None = Field(default=None, description="When the view was seen serving toVersion.")
    duration_ms: int | None = Field(default=None, ge=0)
    previous_savepoint: str | None = Field(
        default=None, max_length=2048, description="The previous version's final savepoint, for rollback."
    )


class ThrottleStatus(KappaModel):
    client_id: str = Field(max_length=255, description="The replay consumer's client id, the quota entity.")
    bytes_per_second: int = Field(ge=0, description="consumer_byte_rate quota set on the brokers.")
    basis: str = Field(max_length=256, description="How the quota was derived from spec.throttle.")
    subtasks: int = Field(
        default=1, ge=1, description="Reader subtasks: each `{clientId}-{i}` gets an even share of the quota."
    )


class Transition(KappaModel):
    phase: ReplayPhase
    at: datetime
    reason: str | None = Field(default=None, max_length=128)


class ReplayRunStatus(CommonStatus):
    phase: ReplayPhase | None = Field(default=None, description="Where the run is.")
    reason: str | None = Field(default=None, max_length=128, description="Why the run ended where it did.")
    entered_at: datetime | None = Field(default=None, description="When the current phase began.")
    phase_deadline: datetime | None = Field(default=None, description="When the current phase times out.")
    caught_up_since: datetime | None = Field(
        default=None, description="Since when lag has held within bounds."
    )
    view: str | None = Field(
        default=None, max_length=253, description="The MaterializedView the run cuts over."
    )
    start_offsets: list[PartitionOffset] = Field(
        default_factory=list, max_length=1024, description="Where the replay group was seeded."
    )
    target_offsets: list[PartitionOffset] = Field(
        default_factory=list,
        max_length=1024,
        description="The head when the replay began (live), or the bounded end: progress is measured to it.",
    )
    throttle: ThrottleStatus | None = None
    cleanup: Literal["Pending", "Done", "Failed"] | None = Field(
        default=None,
        description="The end state's remaining work: removal after abort or failure, the previous version's "
        "decommission, a backfill's stop, or a rollback's switch back. Done once it is finished; Failed past "
        "spec.timeouts.cleanup (the Stalled condition names what is left).",
    )
    consumer_group: str | None = Field(default=None, max_length=255)
    deployment: str | None = Field(default=None, max_length=253)
    output: ReplayOutput | None = None
    progress: Progress | None = None
    lag: Lag | None = None
    preflight: list[CheckResult] = Field(default_factory=list, max_length=32)
    validation: list[CheckResult] = Field(default_factory=list, max_length=64)
    cutover: CutoverRecord | None = None
    transitions: list[Transition] = Field(default_factory=list, max_length=64)
