"""The alerting rules, their runbooks and the Grafana dashboard (manifests/monitoring/), checked with
Prometheus' own promtool (testbed/build-promtool.sh builds it from github.com/prometheus/prometheus):
`promtool check rules`, `promtool test rules` on a case that fires and one that does not for every alert, and
every dashboard query through Prometheus' PromQL parser. Also the metric helpers the alerts rely on."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from kappa.adapters import metrics
from kappa.machines.preflight import PartitionFacts, TopicFacts

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "manifests" / "monitoring"
RULES = MONITORING / "rules.yaml"
RULE_TESTS = MONITORING / "tests" / "rules_test.yaml"
DASHBOARD = MONITORING / "dashboards" / "kappa.json"
CACHE = Path(os.environ.get("KAPPA_CACHE") or Path.home() / ".cache" / "kappa-operator")

# Grafana's variables, as Grafana substitutes them before the query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "6h",
    "$namespace": ".*",
    "$streamjob": ".*",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    tool = CACHE / "bin" / "promtool"
    if not tool.exists():  # `make test` builds it first; a cold cache takes minutes
        build = subprocess.run(
            ["bash", str(ROOT / "testbed" / "build-promtool.sh")], capture_output=True, text=True
        )
        if build.returncode != 0 or not tool.exists():
            reason = f"promtool could not be built: {(build.stderr or build.stdout)[-800:]}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
    return str(tool)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60)


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _render_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "render_prometheusrule", MONITORING / "render_prometheusrule.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- rules ---------------------------------------------------------------------------------------------------


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout + result.stderr


def test_prometheusrule_is_rendered_from_the_rules_and_checks(promtool: str, tmp_path: Path) -> None:
    committed = (MONITORING / "prometheusrule.yaml").read_text()
    render = _render_module()
    assert committed == render.render(yaml.safe_load(RULES.read_text())), (
        "prometheusrule.yaml is stale: run python3 manifests/monitoring/render_prometheusrule.py"
    )
    manifest = yaml.safe_load(committed)
    assert (manifest["apiVersion"], manifest["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    extracted = tmp_path / "groups.yaml"
    extracted.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
    result = _run(promtool, "check", "rules", str(extracted))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = _run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("expr", "case"), [("vector(1)", "does not fire"), ("vector(1) == 0", "fires")], ids=["always", "never"]
)
def test_promtool_unit_tests_catch_a_broken_alert(
    promtool: str, tmp_path: Path, expr: str, case: str
) -> None:
    """Every alert made to fire always, or never, fails a case of its own: each case tests something."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = expr
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = ["rules.yaml"]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = _run(promtool, "test", "rules", str(tmp_path / "tests.yaml"))
    assert result.returncode == 1
    failed = set(re.findall(r"alertname: (\w+),", result.stdout + result.stderr))
    assert failed == {a["alert"] for a in _alerts()}, f"no failing case where it {case}"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases: dict[str, list[list[Any]]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    for alert in _alerts():
        name = alert["alert"]
        assert any(cases.get(name, [])), f"{name}: no case where it fires"
        assert any(not exp for exp in cases.get(name, [])), f"{name}: no case where it does not fire"


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_every_alert_has_severity_for_and_a_runbook(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    assert alert["labels"]["severity"] in ("critical", "warning", "info")
    assert re.fullmatch(r"\d+[smh]", str(alert["for"])), f"{name}: for {alert.get('for')!r}"
    assert alert["annotations"]["summary"] and alert["annotations"]["description"]
    runbook = alert["annotations"]["runbook_url"]
    assert runbook == f"docs/runbooks/{name}.md"
    page = (ROOT / runbook).read_text()
    assert page.startswith(f"# {name}\n"), f"{runbook} is not the page of {name}"
    assert "kubectl kappa" in page, f"{runbook} does not say how to confirm it with kubectl kappa"
    assert "## What to do" in page


def test_runbooks_are_the_alerts() -> None:
    pages = {p.stem for p in (ROOT / "docs" / "runbooks").glob("*.md")} - {"README"}
    assert pages == {a["alert"] for a in _alerts()}
    index = (ROOT / "docs" / "runbooks" / "README.md").read_text()
    for page in pages:
        assert f"({page}.md)" in index, f"docs/runbooks/README.md does not list {page}"


# -- dashboard -----------------------------------------------------------------------------------------------


def _targets() -> list[tuple[str, str]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    return list(walk(json.loads(DASHBOARD.read_text())["panels"]))


def _substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable the test does not know in {expr}"
    return expr


def test_every_dashboard_query_parses_with_prometheus_parser(promtool: str) -> None:
    targets = _targets()
    assert len(targets) >= 20
    for title, expr in targets:
        result = _run(promtool, "--experimental", "promql", "format", _substituted(expr))
        assert result.returncode == 0, f"panel {title!r}: {expr}\n{result.stderr}"


def test_the_parser_rejects_a_broken_query(promtool: str) -> None:
    result = _run(promtool, "--experimental", "promql", "format", "sum by (job (kappa_leader)")
    assert result.returncode != 0


def test_dashboard_covers_the_issue() -> None:
    exprs = " ".join(expr for _, expr in _targets())
    for metric in (
        "kappa_replay_progress_ratio",  # replay progress
        "kappa_replay_records_per_second",  # and rate
        "kappa_consumer_group_lag_records",  # lag per job and version
        "kappa_replay_phase",  # phases
        "kappa_cutovers_total",  # cutovers
        "kappa_replay_rollbacks_total",  # rollbacks
        "kappa_streamjob_rollbacks_total",
    ):
        assert metric in exprs, metric


def _exported_names() -> set[str]:
    names = {"up"}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase | metrics.Scraped):
            name, kind = value._name, value._type
            names |= {
                "counter": {f"{name}_total"},
                "histogram": {f"{name}_bucket", f"{name}_count", f"{name}_sum"},
            }.get(kind, {name})
    return names


def test_rules_and_dashboard_use_only_series_the_operator_exports() -> None:
    exported = _exported_names()
    used = set(re.findall(r"\b(kappa_[a-z_]+|up)\b", RULES.read_text() + DASHBOARD.read_text()))
    assert used and used <= exported, f"not exported by kappa.adapters.metrics: {sorted(used - exported)}"


# -- the metric helpers the alerts read -------------------------------------------------------------------


def _value(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def test_active_version_keeps_one_series_per_streamjob() -> None:
    metrics.set_active_version("mon-test", "orders", "v1")
    metrics.set_active_version("mon-test", "orders", "v2")
    assert _value("kappa_streamjob_active_version", namespace="mon-test", job="orders", version="v2") == 1
    assert _value("kappa_streamjob_active_version", namespace="mon-test", job="orders", version="v1") is None
    metrics.set_active_version("mon-test", "orders", None)
    assert _value("kappa_streamjob_active_version", namespace="mon-test", job="orders", version="v2") is None


def test_reconciling_times_and_counts_errors() -> None:
    before = _value("kappa_reconcile_errors_total", kind="MonTest") or 0.0
    with metrics.reconciling("MonTest"):
        pass
    with pytest.raises(RuntimeError), metrics.reconciling("MonTest"):
        raise RuntimeError("boom")
    assert _value("kappa_reconcile_errors_total", kind="MonTest") == before + 1
    assert _value("kappa_reconcile_duration_seconds_count", kind="MonTest") == 2


def test_retention_deadline_is_the_tightest_partition() -> None:
    topics = {
        "clicks": TopicFacts("clicks", 2, retention_ms=3_600_000),
        "forever": TopicFacts("forever", 1, retention_ms=-1),
    }
    partitions = {
        ("clicks", 0): PartitionFacts(0, 100, 0, start_timestamp_ms=1_000_000),
        ("clicks", 1): PartitionFacts(0, 100, 0, start_timestamp_ms=2_000_000),
        ("forever", 0): PartitionFacts(0, 100, 0, start_timestamp_ms=0),
    }
    metrics.set_retention_deadline("mon-test", "run-1", topics, partitions)
    assert (
        _value("kappa_replay_retention_deadline_timestamp_seconds", namespace="mon-test", run="run-1") == 4600
    )
    metrics.set_retention_deadline("mon-test", "run-1", {"forever": topics["forever"]}, partitions)
    assert (
        _value("kappa_replay_retention_deadline_timestamp_seconds", namespace="mon-test", run="run-1") is None
    )


def test_eta_and_phase_deadline() -> None:
    metrics.set_replay_progress(
        "mon-test", "run-2", {"consumed": 400, "target": 1000, "recordsPerSecond": 20.0}
    )
    assert _value("kappa_replay_eta_seconds", namespace="mon-test", run="run-2") == 30
    deadline = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    metrics.set_timestamp(metrics.replay_phase_deadline, "mon-test", "run-2", deadline)
    got = _value("kappa_replay_phase_deadline_timestamp_seconds", namespace="mon-test", run="run-2")
    assert got == deadline.timestamp()
    metrics.set_timestamp(metrics.replay_phase_deadline, "mon-test", "run-2", None)
    assert _value("kappa_replay_phase_deadline_timestamp_seconds", namespace="mon-test", run="run-2") is None


def test_a_deleted_runs_series_go_and_the_others_stay() -> None:
    for run in ("gone", "kept"):
        metrics.replay_phase.labels("mon-test", run, "CuttingOver").set(1)
        metrics.replay_failures.labels("mon-test", run, "ReplayTimedOut").inc()
        metrics.cutover_failures.labels("mon-test", "ReplayRun", run, "AliasMoved").inc()
        metrics.set_replay_progress("mon-test", run, {"consumed": 1, "target": 2, "recordsPerSecond": 1.0})
    metrics.forget_replay("mon-test", "gone")
    assert _value("kappa_replay_phase", namespace="mon-test", run="gone", phase="CuttingOver") is None
    failures = {"namespace": "mon-test", "run": "gone", "reason": "ReplayTimedOut"}
    assert _value("kappa_replay_failures_total", **failures) is None
    assert _value("kappa_replay_eta_seconds", namespace="mon-test", run="gone") is None
    refused = {"namespace": "mon-test", "kind": "ReplayRun", "reason": "AliasMoved"}
    assert _value("kappa_cutover_failures_total", name="gone", **refused) is None
    assert _value("kappa_cutover_failures_total", name="kept", **refused) == 1
    assert _value("kappa_replay_phase", namespace="mon-test", run="kept", phase="CuttingOver") == 1
    assert _value("kappa_replay_eta_seconds", namespace="mon-test", run="kept") == 1
