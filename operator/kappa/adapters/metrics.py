"""Prometheus metrics of the operator. Served by `kappa run --metrics-port`."""

from __future__ import annotations

import asyncio
import contextlib
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase

from kappa.api.streamjob_status import StreamJobPhase
from kappa.machines.lag import PartitionLag
from kappa.machines.preflight import PartitionFacts, TopicFacts

Series = Iterable[tuple[Sequence[str], float]]


class Scraped:
    """A gauge whose series are made at each scrape from the operator's own state, one entry per object,
    instead of a labelled child per series: the way kube-state-metrics exports per-object state, through
    prometheus_client's custom collector interface (`collect`, `describe`). A labelled child costs about
    800 bytes (its lock, value and label tuple); at 1,000 StreamJobs the per-object gauges below were 13,000
    children, 10 MiB of the operator's memory (benchmarks/README.md). `series` runs in the scrape's thread:
    it takes a `list()` of the dict it reads, which the event loop may change meanwhile."""

    _type = "gauge"

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], series: Callable[[], Series]
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._series = series
        REGISTRY.register(self)

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> list[GaugeMetricFamily]:
        family = self._family()
        for labels, value in self._series():
            family.add_metric(labels, value)
        return [family]


GROUP_LABELS = ("namespace", "job", "version", "group")


class GroupLagSeries(NamedTuple):
    """A tracked group's last poll, as its series show it (adapters/lag_monitor.py `_export`)."""

    partitions: Sequence[PartitionLag]
    total: int
    status: int
    fell_off: int


group_lags: dict[tuple[str, ...], GroupLagSeries] = {}
"""The four group series below, by their label values (GROUP_LABELS); a group's entry goes when it is
untracked, and its series with it."""


def _group_series(value: Callable[[GroupLagSeries], float]) -> Callable[[], Series]:
    return lambda: ((labels, value(lag)) for labels, lag in list(group_lags.items()))


def _partition_series() -> Series:
    for labels, lag in list(group_lags.items()):
        for part in lag.partitions:
            yield (*labels, part.topic, str(part.partition)), part.lag


consumer_lag = Scraped(
    "kappa_consumer_lag_records",
    "Records a version's consumer group is behind, per partition (read_committed, markers excluded).",
    [*GROUP_LABELS, "topic", "partition"],
    _partition_series,
)
group_lag = Scraped(
    "kappa_consumer_group_lag_records",
    "Total records a consumer group is behind.",
    GROUP_LABELS,
    _group_series(lambda lag: lag.total),
)
group_lag_status = Scraped(
    "kappa_consumer_group_lag_status",
    "Burrow-style evaluation of a group: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP.",
    GROUP_LABELS,
    _group_series(lambda lag: lag.status),
)
fell_off_retention = Scraped(
    "kappa_consumer_fell_off_retention_partitions",
    "Partitions whose committed offset is behind the log start: records deleted before being read.",
    GROUP_LABELS,
    _group_series(lambda lag: lag.fell_off),
)
lag_poll_seconds = Histogram(
    "kappa_lag_poll_duration_seconds",
    "Duration of one batched lag poll of all tracked groups.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
lag_poll_errors = Counter("kappa_lag_poll_errors_total", "Lag polls that failed.")

replay_phase = Gauge(
    "kappa_replay_phase",
    "1 for the phase a ReplayRun is in, 0 for the others.",
    ["namespace", "run", "phase"],
)
replay_transitions = Counter(
    "kappa_replay_transitions_total",
    "ReplayRun phase transitions, by phase entered.",
    ["namespace", "run", "phase"],
)
replay_progress = Gauge(
    "kappa_replay_progress_ratio", "Records consumed / records to consume of a replay.", ["namespace", "run"]
)
replay_rate = Gauge(
    "kappa_replay_records_per_second", "Achieved read rate of a replay.", ["namespace", "run"]
)
cutovers = Counter("kappa_cutovers_total", "Atomic view switches done by ReplayRuns.", ["namespace", "view"])
rollbacks = Counter(
    "kappa_replay_rollbacks_total", "ReplayRuns rolled back after cutover.", ["namespace", "job"]
)
view_switches = Counter(
    "kappa_view_switches_total",
    "Switches done by the MaterializedView controller itself (first version, spec.activeVersion pins).",
    ["namespace", "view"],
)
leader = Gauge(
    "kappa_leader",
    "1 while this replica holds the leader-election Lease and acts, 0 while it stands by (kappa run "
    "--leader-election).",
)

# -- Series the alerts need (manifests/monitoring/rules.yaml, docs/runbooks/) ---------------------------

replay_eta = Gauge(
    "kappa_replay_eta_seconds",
    "Seconds a replay still needs to reach its target at the rate it achieved so far.",
    ["namespace", "run"],
)
replay_phase_deadline = Gauge(
    "kappa_replay_phase_deadline_timestamp_seconds",
    "When the phase a ReplayRun is in times out (status.phaseDeadline), in Unix seconds; absent for a phase "
    "without one.",
    ["namespace", "run"],
)
replay_retention_deadline = Gauge(
    "kappa_replay_retention_deadline_timestamp_seconds",
    "When time retention deletes the first record the replay starts from, on its tightest partition, in Unix "
    "seconds, as measured at preflight; absent when no replayed partition deletes by time.",
    ["namespace", "run"],
)
replay_failures = Counter(
    "kappa_replay_failures_total",
    "ReplayRuns that entered Failed, by status.reason (e.g. FellOffRetention, ReplayTimedOut).",
    ["namespace", "run", "reason"],
)
cutover_failures = Counter(
    "kappa_cutover_failures_total",
    "View switches refused (AliasMoved: someone repointed the view) or failed (SwitchFailed), by the "
    "resource that tried (kind ReplayRun or MaterializedView). An outage of the backend is not counted.",
    ["namespace", "kind", "name", "reason"],
)
reconcile_seconds = Histogram(
    "kappa_reconcile_duration_seconds",
    "Duration of one reconcile, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
reconcile_errors = Counter(
    "kappa_reconcile_errors_total", "Reconciles that ended with an exception, by kind.", ["kind"]
)
_active_versions: dict[tuple[str, str], str] = {}
streamjob_active_version = Scraped(
    "kappa_streamjob_active_version",
    "1 for the version a StreamJob runs live (status.activeVersion); one series per StreamJob.",
    ["namespace", "job", "version"],
    lambda: (((ns, job, version), 1.0) for (ns, job), version in list(_active_versions.items())),
)
streamjob_rollbacks = Counter(
    "kappa_streamjob_rollbacks_total",
    "StreamJob upgrades rolled back to the previous version (status.history outcome RolledBack).",
    ["namespace", "job"],
)


def _remove(gauge: MetricWrapperBase, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


def set_timestamp(gauge: Gauge, namespace: str, run: str, at: datetime | None) -> None:
    """A deadline gauge: set to `at` in Unix seconds, or its series removed when there is none."""
    if at is None:
        _remove(gauge, namespace, run)
    else:
        gauge.labels(namespace, run).set(at.timestamp())


def set_replay_progress(namespace: str, run: str, progress: Mapping[str, Any]) -> None:
    """The ETA of a replay from its status.progress (consumed, target, recordsPerSecond)."""
    rate = progress.get("recordsPerSecond")
    if not progress.get("target") or not rate:
        return
    remaining = max(int(progress["target"]) - int(progress.get("consumed") or 0), 0)
    replay_eta.labels(namespace, run).set(remaining / float(rate))


def set_retention_deadline(
    namespace: str,
    run: str,
    topics: Mapping[str, TopicFacts],
    partitions: Mapping[tuple[str, int], PartitionFacts],
) -> None:
    """From the preflight's facts: when time retention deletes the first record to replay, on the partition
    where that comes first. Partitions without a start timestamp or without time retention are left out."""
    deadlines = [
        (facts.start_timestamp_ms + topics[topic].retention_ms) / 1000
        for (topic, _), facts in partitions.items()
        if facts.start_timestamp_ms is not None
        and topic in topics
        and topics[topic].retention_ms >= 0
        and "delete" in topics[topic].cleanup_policy
    ]
    if deadlines:
        replay_retention_deadline.labels(namespace, run).set(min(deadlines))
    else:
        _remove(replay_retention_deadline, namespace, run)


def set_active_version(namespace: str, job: str, version: str | None) -> None:
    """One series per StreamJob: 1 for its active version (the previous version's series goes), none with
    None (the StreamJob is gone or runs nothing)."""
    if version:
        _active_versions[(namespace, job)] = version
    else:
        _active_versions.pop((namespace, job), None)


@contextlib.contextmanager
def reconciling(kind: str) -> Iterator[None]:
    """Times one reconcile of `kind` and counts it as an error when it raises (the error goes on)."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, asyncio.CancelledError | GeneratorExit):
            reconcile_errors.labels(kind).inc()
        raise
    finally:
        reconcile_seconds.labels(kind).observe(time.perf_counter() - started)


RUN_SERIES: tuple[MetricWrapperBase, ...] = (
    replay_phase,
    replay_transitions,
    replay_progress,
    replay_rate,
    replay_eta,
    replay_phase_deadline,
    replay_retention_deadline,
    replay_failures,
    cutover_failures,
)


def forget_replay(namespace: str, run: str) -> None:
    """A deleted ReplayRun's series go (its phase would otherwise stay 1, e.g. CuttingOver, and alert on)."""
    for metric in RUN_SERIES:
        # prometheus_client lists no children publicly; _metrics is its child table, keyed by label values.
        names = metric._labelnames
        for values in list(metric._metrics):
            labels = dict(zip(names, values, strict=True))
            mine = labels.get("run") == run or (labels.get("kind"), labels.get("name")) == ("ReplayRun", run)
            if labels.get("namespace") == namespace and mine:
                with contextlib.suppress(KeyError):
                    metric.remove(*values)


schedule_objects = Gauge(
    "kappa_schedule_objects", "Objects the operator looks after, by kind (controllers/schedule.py).", ["kind"]
)
schedule_due = Gauge(
    "kappa_schedule_due",
    "Objects whose look is due and not begun yet (the queue's depth), by kind: near 0 when it keeps up.",
    ["kind"],
)
schedule_running = Gauge("kappa_schedule_running", "Looks under way, by kind.", ["kind"])


class Scheduled(Protocol):
    def __len__(self) -> int: ...

    @property
    def running(self) -> int: ...

    def due_now(self) -> int: ...


def watch_schedule(kind: str, schedule: Scheduled) -> None:
    """The schedule's size, depth and looks under way, read at each scrape."""
    schedule_objects.labels(kind).set_function(lambda: len(schedule))
    schedule_due.labels(kind).set_function(schedule.due_now)
    schedule_running.labels(kind).set_function(lambda: schedule.running)


STREAMJOB_PHASES = typing.get_args(StreamJobPhase)
_phases: dict[tuple[str, str], str] = {}


def _phase_series() -> Series:
    for (namespace, job), current in list(_phases.items()):
        for phase in STREAMJOB_PHASES:
            yield (namespace, job, phase), 1.0 if phase == current else 0.0


streamjob_phase = Scraped(
    "kappa_streamjob_phase",
    "1 for the phase a StreamJob is in (status.phase), 0 for the others; one series per phase per StreamJob.",
    ["namespace", "job", "phase"],
    _phase_series,
)
streamjob_upgrades = Counter(
    "kappa_streamjob_upgrades_total",
    "StreamJob upgrades by outcome: Started (UpgradeStarted), Succeeded (UpgradeSucceeded), RollingBack.",
    ["namespace", "job", "outcome"],
)
streamjob_canaries = Counter(
    "kappa_streamjob_canaries_total",
    "Canary analyses by outcome: Started, Promoted, Aborted (a gate failed) or Superseded.",
    ["namespace", "job", "outcome"],
)
_COUNTED = {
    "UpgradeStarted": (streamjob_upgrades, "Started"),
    "UpgradeSucceeded": (streamjob_upgrades, "Succeeded"),
    "RollingBack": (streamjob_upgrades, "RollingBack"),
    "CanaryStarted": (streamjob_canaries, "Started"),
    "CanaryPromoted": (streamjob_canaries, "Promoted"),
    "CanaryAborted": (streamjob_canaries, "Aborted"),
    "CanarySuperseded": (streamjob_canaries, "Superseded"),
}


def streamjob_said(namespace: str, job: str, reasons: list[str], phase: str | None) -> None:
    """A StreamJob's status write: its phase, and its transitions counted by the events that say them."""
    for reason in reasons:
        if reason in _COUNTED:
            counter, outcome = _COUNTED[reason]
            counter.labels(namespace, job, outcome).inc()
    if phase is not None and phase in STREAMJOB_PHASES:
        _phases[(namespace, job)] = phase


def forget_streamjob(namespace: str, job: str) -> None:
    """The StreamJob is gone: its series go too."""
    set_active_version(namespace, job, None)
    _phases.pop((namespace, job), None)
    _remove(streamjob_rollbacks, namespace, job)
    _remove(rollbacks, namespace, job)  # its ReplayRuns' rollbacks (kappa_replay_rollbacks_total)
    for counter, outcome in _COUNTED.values():
        _remove(counter, namespace, job, outcome)


def serve(port: int, addr: str) -> None:
    """/metrics on `addr:port`, from a thread of its own (prometheus-client's server)."""
    start_http_server(port, addr=addr)
