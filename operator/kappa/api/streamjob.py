"""StreamJob: a long-running Flink job with versions, savepoint upgrades, canary and automatic rollback.
Here the spec: its source, versioned outputs, upgrade strategy (savepoint, canary or replay) and canary
analysis. spec.flink and spec.runtime are in kappa.api.flink, spec.source.kafka in kappa.api.kafka, the status
in kappa.api.streamjob_status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from kappa.api.base import (
    MAX_TABLE_BASE,
    MAX_TOPIC_BASE,
    Bounds,
    Deadline,
    Duration,
    KappaModel,
    ObjectName,
    TableBase,
    TopicBase,
    TopicName,
    VersionName,
    cel,
    defaulted,
    exactly_one,
    validated,
)
from kappa.api.flink import NOT_ON_SESSION, FlinkSpec, RuntimeSpec
from kappa.api.kafka import KafkaCluster


class StartingPosition(KappaModel):
    """Where the first version starts reading: exactly one of latest, earliest or timestamp."""

    model_config = validated(
        cel(
            exactly_one(["latest", "earliest", "timestamp"]),
            "exactly one of latest, earliest or timestamp must be set",
        )
    )

    latest: Literal[True] | None = Field(default=None, description="Start at the end of the log.")
    earliest: Literal[True] | None = Field(default=None, description="Start at the start of the log.")
    timestamp: datetime | None = Field(
        default=None, description="Start at the first record at or after this time (RFC 3339)."
    )


class Source(KappaModel):
    """The Kafka input of the job."""

    kafka: KafkaCluster = Field(description="The Kafka cluster to read from.")
    topics: list[TopicName] = Field(min_length=1, max_length=32, description="Input topics.")
    starting_position: StartingPosition = Field(
        default_factory=lambda: StartingPosition(latest=True),
        description="Start position for the first deploy only; later versions start from savepoints.",
        json_schema_extra={"default": {"latest": True}},
    )


class TopicOutput(KappaModel):
    """A versioned output topic `{base}.{version}`, created per version."""

    base: TopicBase = Field(
        description="Base topic name; each version writes `{base}.{version}` (a canary "
        f"`{{base}}.{{version}}-canary`). Lowercase, at most {MAX_TOPIC_BASE} characters, so that every "
        "derived topic fits Kafka's 249."
    )
    partitions: int = Field(default=1, ge=1, le=10000, description="Partitions of each versioned topic.")
    replicas: int = Field(default=1, ge=1, le=32, description="Replication factor of each versioned topic.")
    config: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Topic configs, e.g. retention.ms."
    )


class TableOutput(KappaModel):
    """A versioned output table `{base}_{version}`."""

    base: TableBase = Field(
        description="Base table name; each version writes `{base}_{version}` (a canary "
        f"`{{base}}_{{version}}_canary`). At most {MAX_TABLE_BASE} characters, so that every derived table "
        "fits PostgreSQL's 63-byte identifiers."
    )


class Output(KappaModel):
    """What the job writes. At least one of topic or table."""

    model_config = validated(
        cel("has(self.topic) || has(self.table)", "at least one of topic or table must be set")
    )

    topic: TopicOutput | None = Field(default=None, description="Versioned Kafka output.")
    table: TableOutput | None = Field(default=None, description="Versioned table output.")
    view: ObjectName | None = Field(
        default=None, description="A MaterializedView in this namespace that serves this output to readers."
    )
    deletion_policy: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="What happens to versioned outputs when the StreamJob is deleted. Retain keeps them.",
    )


class CanarySpec(KappaModel):
    """Canary analysis: the candidate runs beside stable with its own group and a shadow output."""

    duration: Deadline = Field(
        default="10m", description="How long to analyse before deciding; more than 0s."
    )
    max_restarts: int = Field(default=0, ge=0, le=100, description="Candidate restarts allowed.")
    max_lag_records: int = Field(default=10000, ge=0, description="Candidate lag allowed at the end.")
    output_rate_ratio: Bounds = Field(
        default_factory=lambda: Bounds(min=0.8, max=1.2),
        description="Candidate output rate / stable output rate must stay within these bounds.",
        json_schema_extra={"default": {"min": 0.8, "max": 1.2}},
    )
    no_data: Literal["Fail", "Pass", "Extend"] = Field(
        default="Fail", description="What to decide when neither version saw input during the analysis."
    )


class UpgradeSpec(KappaModel):
    """How a change of spec.version is rolled out."""

    model_config = validated(
        cel(
            "!has(self.stableFor) || !has(self.readinessTimeout)"
            " || duration(self.stableFor) <= duration(self.readinessTimeout)",
            "stableFor must be <= readinessTimeout",
            field_path=".stableFor",
        )
    )

    strategy: Literal["savepoint", "canary", "replay"] = Field(
        default="savepoint",
        description="savepoint: stop with savepoint, start new version from it. canary: analyse beside "
        "stable first. replay: create a ReplayRun for the new version.",
    )
    readiness_timeout: Deadline = Field(
        default="5m",
        description="Time for the new version to pass its readiness gates before rollback; more than 0s.",
    )
    max_restarts: int = Field(default=3, ge=0, le=100, description="Restarts allowed during readiness.")
    stable_for: Duration = Field(
        default="30s",
        description="How long every readiness gate must hold without a break before the new version is "
        "ready; one healthy moment between crashes is not enough. 0s: ready the first time every gate "
        "passes.",
    )
    rollback_window: Duration = Field(
        default="30m",
        description="How long the previous version stays suspended, ready for rollback. 0s: no rollback "
        "window, the previous version is removed once the new one is ready.",
    )
    savepoint_timeout: Deadline = Field(
        default="10m", description="Deadline for taking a savepoint; more than 0s."
    )
    canary: CanarySpec = defaulted(CanarySpec, "Canary analysis settings (strategy canary).")


class StreamJobSpec(KappaModel):
    """A versioned Flink streaming job. Changing `version` starts an upgrade."""

    model_config = validated(NOT_ON_SESSION)

    version: VersionName
    source: Source = Field(description="The Kafka input.")
    output: Output = Field(description="The versioned outputs.")
    flink: FlinkSpec = Field(description="The Flink job, passed through to FKO.")
    upgrade: UpgradeSpec = defaulted(UpgradeSpec, "How version changes are rolled out.")
    suspend: bool = Field(default=False, description="Suspend the job with a savepoint.")
    runtime: RuntimeSpec | None = Field(
        default=None, description="Where the job runs; default: the operator's --runtime."
    )
