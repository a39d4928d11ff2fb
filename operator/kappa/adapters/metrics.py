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
