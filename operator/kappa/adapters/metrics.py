"""Prometheus metrics of the operator. Served by `kappa run --metrics-port`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

GROUP_LABELS = ("namespace", "job", "version", "group")

consumer_lag = Gauge(
    "kappa_consumer_lag_records",
    "Records a version's consumer group is behind, per partition (read_committed, markers excluded).",
    [*GROUP_LABELS, "topic", "partition"],
)
group_lag = Gauge(
    "kappa_consumer_group_lag_records", "Total records a consumer group is behind.", GROUP_LABELS
)
group_lag_status = Gauge(
    "kappa_consumer_group_lag_status",
    "Burrow-style evaluation of a group: 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP.",
    GROUP_LABELS,
)
fell_off_retention = Gauge(
    "kappa_consumer_fell_off_retention_partitions",
    "Partitions whose committed offset is behind the log start: records deleted before being read.",
    GROUP_LABELS,
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
