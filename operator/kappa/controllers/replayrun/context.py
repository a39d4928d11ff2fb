"""What one reconcile of a ReplayRun has read, shared by every concern of the controller: the run's state
from its typed status (`replay_state`), its machine spec (`replay_spec`), the `Context` of names and objects,
what the observers found (`Seen`), and the `Services` (API client, lag, job runtimes, view claims) they use.
Status is read only through the models (`ReplayRunStatus.of`, `StreamJobStatus.of`,
`MaterializedViewStatus.of`), and the patches are built from them (`wire`, `given`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kappa.adapters.claims import ViewClaims
from kappa.adapters.job_runtime.seam import JobRuntime
from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.kafka.values import Partition
from kappa.adapters.kube import Kube
from kappa.api.base import API_VERSION, duration
from kappa.api.conditions import ConditionUpdate
from kappa.api.materializedview import MaterializedViewSpec, MaterializedViewStatus
from kappa.api.replayrun import PartitionOffset, ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus
from kappa.controllers.cluster import KafkaConnectionError, kafka_connection, physical_name
from kappa.controllers.job_runtimes import Runtimes, RuntimeUnconfigured
from kappa.controllers.lag import LagTracking
from kappa.controllers.looks import OfObject
from kappa.controllers.status import write_status
from kappa.machines import replay
from kappa.machines.decision import Event
from kappa.render import names
from kappa.render.replay import output_table, output_topic


def replay_state(status: ReplayRunStatus) -> replay.ReplayState:
    cut = status.cutover
    return replay.ReplayState(
        phase=status.phase or "Pending",
        entered_at=status.entered_at,
        deadline=status.phase_deadline,
        caught_up_since=status.caught_up_since,
        cutover_from=cut.from_version if cut else None,
        cutover_to=cut.to_version if cut else None,
        cut_over_at=cut.at if cut else None,
        reason=status.reason,
    )


def replaced_version(status: ReplayRunStatus) -> str | None:
    """The StreamJob version a cutover replaced (kept suspended for the rollback window, then decommissioned).
    Not always the view's version it switched from: after a savepoint upgrade, v2 writes v1's output."""
    cut = status.cutover
    return (cut.replaced_version or cut.from_version) if cut else None


def replay_spec(run: ReplayRunSpec, view: str | None) -> replay.ReplaySpec:
    t = run.timeouts
    return replay.ReplaySpec(
        version=run.version,
        view=view,
        bounded=not run.until.live,
        approval=run.approval,
        max_lag_records=run.catch_up.max_lag_records,
        stable_for=duration(run.catch_up.stable_for),
        rollback_window=duration(run.rollback_window),
        timeouts={
            "Pending": duration(t.pending),
            "Preflight": duration(t.preflight),
            "Replaying": duration(t.replaying),
            "CatchingUp": duration(run.catch_up.timeout),
            "Validating": duration(run.validation.timeout),
            "AwaitingApproval": duration(t.awaiting_approval),
            "CuttingOver": duration(t.cutting_over),
        },
    )


def offsets_of(entries: list[PartitionOffset]) -> dict[Partition, int]:
    return {(e.topic, e.partition): e.offset for e in entries}


def entries_of(offsets: dict[Partition, int]) -> list[dict[str, Any]]:
    """Offsets as status records them (startOffsets, targetOffsets)."""
    return [PartitionOffset(topic=t, partition=p, offset=o).wire() for (t, p), o in sorted(offsets.items())]


def parallelism_of(job: StreamJobSpec, run: ReplayRunSpec) -> int:
    if run.overrides and run.overrides.parallelism:
        return run.overrides.parallelism
    return job.flink.parallelism


@dataclass
class Context(OfObject):
    """Everything one reconcile of one run has read."""

    obj: dict[str, Any]
    run: ReplayRunSpec
    job_obj: dict[str, Any]
    job: StreamJobSpec
    kafka: KafkaConnection | None
    """How the operator's clients reach the job's Kafka; None while its bootstrap servers are unknown."""
    view_name: str | None
    view_obj: dict[str, Any] | None
    view_spec: MaterializedViewSpec | None
    now: datetime
    accepted: list[Event] = field(default_factory=list)
    """The "Accepted" event of a spec not seen before, said with this pass's write."""

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers alone: what the Flink job is rendered with."""
        return self.kafka.bootstrap if self.kafka else ""

    @property
    def connection(self) -> KafkaConnection:
        """The connection of a run whose Kafka is known (the reconcile stops before it is used otherwise)."""
        if self.kafka is None:
            raise RuntimeError("the StreamJob's Kafka bootstrap servers are unknown")
        return self.kafka

    @property
    def job_name(self) -> str:
        return self.run.job_ref.name

    @property
    def status(self) -> ReplayRunStatus:
        """The run's status as written so far in this pass (each write merges into `obj`)."""
        return ReplayRunStatus.of(self.obj)

    @property
    def job_status(self) -> StreamJobStatus:
        return StreamJobStatus.of(self.job_obj)

    @property
    def view_active(self) -> str | None:
        """The version the operator recorded as the view's active one (its status)."""
        return MaterializedViewStatus.of(self.view_obj).active_version if self.view_obj else None

    @property
    def group(self) -> str:
        return names.consumer_group(self.namespace, self.job_name, self.run.version)

    @property
    def deployment(self) -> str:
        return names.deployment_name(self.job_name, self.run.version)

    @property
    def parallelism(self) -> int:
        return parallelism_of(self.job, self.run)

    def physical(self, version: str | None) -> str | None:
        """What the view reads for a version; the run's own output for the replayed version."""
        if version is None or self.view_spec is None:
            return None
        if version == self.run.version:
            if self.view_spec.backend.type == "postgres":
                return output_table(self.job, self.run)
            return output_topic(self.job, self.run)
        lineage = self.job_status.output_versions
        return physical_name(self.job, self.view_spec, version, lineage)

    def version_of(self, physical: str | None, candidates: list[str | None]) -> str | None:
        if physical is None:
            return None
        for version in candidates:
            if version and self.physical(version) == physical:
                return version
        return f"({physical})"  # not a version of this job: it matches no precondition


@dataclass(frozen=True)
class Seen:
    """What the observers returned: the machine's input, and the facts they measured for status (offsets,
    throttle, progress, lag, handled requests, the previous savepoint), written with the decision."""

    machine: replay.ReplayObserved
    recorded: dict[str, Any]


class Services:
    """The clients every concern of the controller uses, one set for every run."""

    def __init__(self, kube: Kube, lag: LagTracking) -> None:
        self.kube = kube
        self.lag = lag
        self.runtimes = Runtimes(kube)
        self.claims = ViewClaims(kube)

    async def write(
        self,
        obj: dict[str, Any],
        patch: dict[str, Any],
        conditions: list[ConditionUpdate],
        events: list[Event],
        now: datetime,
    ) -> None:
        """The one status writer of the ReplayRun controller."""
        generation = int(obj["metadata"]["generation"])
        await write_status(self.kube, "ReplayRun", obj, patch, conditions, events, generation, now)

    async def runtime(self, namespace: str, job_name: str) -> JobRuntime:
        """The runtime of the run's StreamJob; FKO's when the job is gone or invalid (then the garbage
        collector and the StreamJob's finalizer have stopped its versions already)."""
        job_obj = await self.kube.get(API_VERSION, "StreamJob", namespace, job_name)
        if job_obj is None:
            return self.runtimes.fko
        try:
            job = StreamJobSpec.model_validate(job_obj["spec"])
            # for_job (controllers/job_runtimes.py) reads the status in its wire form.
            return await self.runtimes.for_job(job, namespace, StreamJobStatus.of(job_obj))
        except (ValidationError, RuntimeUnconfigured):
            return self.runtimes.fko

    def admin(self, ctx: Context) -> KafkaAdmin:
        return self.lag.monitor(ctx.connection).admin

    async def connection_or_none(self, job: StreamJobSpec, namespace: str) -> KafkaConnection | None:
        """The job's Kafka connection where Kafka is only needed to clean up: None when it cannot be built
        (the cleanup then waits, or leaves to the owner what needs Kafka)."""
        try:
            return await kafka_connection(self.kube, job, namespace)
        except KafkaConnectionError:
            return None

    async def admin_or_none(self, job: StreamJobSpec, namespace: str) -> KafkaAdmin | None:
        kafka = await self.connection_or_none(job, namespace)
        return self.lag.monitor(kafka).admin if kafka else None
