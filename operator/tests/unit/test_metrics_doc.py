"""docs/metrics.md's table and kappa.adapters.metrics cannot drift: every metric the module defines is a row
with its exposed name, type and labels, every row names a metric the module defines, and the counts the
cardinality column gives (histogram buckets, phases) are the code's."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from prometheus_client import Histogram
from prometheus_client.metrics import MetricWrapperBase

from kappa.adapters import metrics
from kappa.api.replayrun import ReplayPhase
from kappa.api.streamjob_status import StreamJobPhase

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "metrics.md"


def defined() -> dict[str, tuple[str, tuple[str, ...], MetricWrapperBase | metrics.Scraped]]:
    """Exposed name (a counter's with `_total`) → (type, labels, the metric) of each metric of the module:
    prometheus_client's own, and the gauges made at each scrape (`Scraped`)."""
    found: dict[str, tuple[str, tuple[str, ...], MetricWrapperBase | metrics.Scraped]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase | metrics.Scraped):
            name = f"{value._name}_total" if value._type == "counter" else value._name
            found[str(name)] = (str(value._type), tuple(value._labelnames), value)
    return found


def documented() -> dict[str, tuple[str, tuple[str, ...], str]]:
    """Metric → (type, labels, cardinality) from the table's rows."""
    rows = {}
    for line in DOC.read_text().splitlines():
        if not line.startswith("| `kappa_"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        # metric, type, labels, meaning, cardinality, series removed
        assert len(cells) == 6, f"a row needs 6 cells: {line}"
        name = cells[0].strip("`")
        assert name not in rows, f"{name} twice in the table"
        rows[name] = (cells[1], tuple(re.findall(r"`([a-z_]+)`", cells[2])), cells[4])
    return rows


def test_every_metric_is_in_the_table_with_its_type_and_labels_and_every_row_exists() -> None:
    code, doc = defined(), documented()
    assert len(code) > 20, "the walk found too few metrics"  # the module defines 29 today
    assert sorted(code.keys() - doc.keys()) == [], "in kappa.adapters.metrics but not in docs/metrics.md"
    assert sorted(doc.keys() - code.keys()) == [], "in docs/metrics.md but not in kappa.adapters.metrics"
    for name, (kind, labels, _) in code.items():
        said = doc[name][:2]
        assert said == (kind, labels), f"{name}: the table says {said}, the code {(kind, labels)}"


def test_the_cardinality_column_counts_what_the_code_makes() -> None:
    code, doc = defined(), documented()
    for name, (_, _, metric) in code.items():
        if isinstance(metric, Histogram):  # the buckets it declares, +Inf included
            buckets = len(metric._upper_bounds)
            assert f"{buckets} buckets" in doc[name][2], f"{name} has {buckets} buckets: {doc[name][2]}"
    assert doc["kappa_replay_phase"][2].startswith(f"{len(typing.get_args(ReplayPhase))} per ReplayRun")
    assert doc["kappa_streamjob_phase"][2].startswith(f"{len(typing.get_args(StreamJobPhase))} per StreamJob")
