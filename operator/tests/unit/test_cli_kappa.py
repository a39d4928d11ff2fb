"""`kubectl kappa`'s pure parts: exit codes by phase, what the status view says, how --from and --until are
read, and whether a handled request was acted on. The status objects are shaped as the operator wrote them in
the integration stories (test_cli_kappa.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from kappa.adapters.cli_cluster import CliError, kind_of
from kappa.cli import codes
from kappa.cli.main import main
from kappa.cli.replay import build
from kappa.cli.requests import refused_up_front, verdict
from kappa.cli.status import plain
from kappa.cli.watch import outcome, summary

NOW = datetime(2026, 11, 28, 16, 59, 0, tzinfo=UTC)
SPEC = {
    "jobRef": {"name": "sessionizer"},
    "version": "v2",
    "from": {"earliest": True},
    "approval": "Manual",
    "catchUp": {"maxLagRecords": 10, "stableFor": "2s", "timeout": "2m"},
}


def run(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "ReplayRun",
        "metadata": {"name": "sessionizer-v2", "namespace": "shop"},
        "spec": SPEC,
        "status": {"phase": phase, "enteredAt": "2026-11-28T16:58:44Z", **status},
    }


REPLAYING = run(
    "Replaying",
    phaseDeadline="2026-11-29T16:58:44Z",
    progress={"consumed": 410, "target": 1000, "percent": "41%", "recordsPerSecond": 35.2, "eta": "0m17s"},
    lag={
        "total": 630,
        "evaluation": "STALL",
        "partitions": [
            {"topic": "clicks", "partition": 0, "lag": 0},
            {"topic": "clicks", "partition": 1, "lag": 337},
            {"topic": "clicks", "partition": 2, "lag": 293},
        ],
    },
    preflight=[
        {"name": "StartRetained", "passed": True, "reason": "StartRetained", "message": "retained"},
        {"name": "OutputFree", "passed": True, "reason": "OutputFree", "message": "output (none) is free"},
    ],
    conditions=[
        {
            "type": t,
            "status": s,
            "reason": "Replaying",
            "message": "replaying",
            "lastTransitionTime": "2026-11-28T16:58:44Z",
        }
        for t, s in (("Ready", "False"), ("Reconciling", "True"), ("Stalled", "False"))
    ],
)
FAILED = run(
    "Failed",
    reason="ValidationFailed",
    validation=[
        {"name": "CountRatio", "passed": True, "reason": "Within", "message": "ratio 1.0000"},
        {
            "name": "sql/revenue-negative",
            "passed": False,
            "reason": "CheckFailed",
            "message": "returned false",
        },
    ],
    conditions=[
        {
            "type": "Stalled",
            "status": "True",
            "reason": "ValidationFailed",
            "message": "gate sql/revenue-negative failed",
            "lastTransitionTime": "2026-11-28T16:59:00Z",
        }
    ],
)


@pytest.mark.parametrize(
    ("phase", "until", "code"),
    [
        ("Replaying", "succeeded", None),
        ("AwaitingApproval", "succeeded", None),
        ("Observing", "succeeded", None),
        ("Observing", "cutover", codes.OK),
        ("Succeeded", "succeeded", codes.OK),
        ("Failed", "succeeded", codes.FAILED),
        ("Aborted", "cutover", codes.ABORTED),
        ("RolledBack", "succeeded", codes.ROLLED_BACK),
    ],
)
def test_a_watched_run_ends_with_the_exit_code_of_its_phase(phase: str, until: str, code: int | None) -> None:
    assert outcome("ReplayRun", run(phase), until) == code


def test_the_status_of_a_replaying_run_shows_progress_rate_eta_and_the_laggiest_partitions() -> None:
    text = plain("ReplayRun", REPLAYING, [], NOW)
    assert "Phase:       Replaying, for 16s, deadline in 23h59m" in text
    assert "41% 410/1,000 records, 35 records/s, ETA 0m17s" in text
    assert "630 records (STALL): clicks[1] 337, clicks[2] 293, clicks[0] 0" in text
    assert "✓ StartRetained, OutputFree" in text
    assert "Ready=False Replaying: replaying" in text and "Stalled=" not in text
    assert summary("ReplayRun", REPLAYING) == (
        "phase=Replaying progress=41% (410/1000) rate=35/s eta=0m17s lag=630"
    )


def test_the_status_of_a_failed_run_names_the_failed_gate() -> None:
    text = plain("ReplayRun", FAILED, [], NOW)
    assert "Failed (ValidationFailed)" in text
    assert "✗ sql/revenue-negative: CheckFailed (returned false)" in text
    assert "Stalled=True ValidationFailed: gate sql/revenue-negative failed" in text
    assert summary("ReplayRun", FAILED) == "phase=Failed reason=ValidationFailed failed=sql/revenue-negative"


def test_kinds_are_spelled_as_kubectl_spells_them() -> None:
    assert kind_of("rr") == kind_of("ReplayRuns") == ("ReplayRun", "replayruns")
    assert kind_of("sj")[0] == "StreamJob" and kind_of("mv")[0] == "MaterializedView"
    with pytest.raises(CliError, match="unknown kind"):
        kind_of("deployment")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("earliest", {"earliest": True}),
        ("2026-11-28T12:00:00Z", {"timestamp": "2026-11-28T12:00:00Z"}),
        ("2026-11-28T13:00:00+01:00", {"timestamp": "2026-11-28T12:00:00Z"}),
        (
            "clicks:0=120,clicks:1=80",
            {
                "offsets": [
                    {"topic": "clicks", "partition": 0, "offset": 120},
                    {"topic": "clicks", "partition": 1, "offset": 80},
                ]
            },
        ),
    ],
)
def test_from_takes_earliest_a_time_or_offsets(start: str, expected: dict[str, Any]) -> None:
    obj = build("sessionizer", "v2", start)
    assert obj["spec"]["from"] == expected
    assert obj["spec"]["until"] == {"live": True}
    assert obj["metadata"]["name"] == "sessionizer-v2"


@pytest.mark.parametrize(
    ("start", "error"),
    [
        ("2026-11-28T12:00:00", "needs a zone"),
        ("clicks=3", "expected earliest, an RFC 3339 time"),
        ("clicks:x=3", "expected earliest, an RFC 3339 time"),
    ],
)
def test_a_start_that_is_none_of_them_is_refused_before_any_request(start: str, error: str) -> None:
    with pytest.raises(CliError, match=error):
        build("sessionizer", "v2", start)


def test_the_spec_is_checked_against_the_model_before_it_is_sent() -> None:
    with pytest.raises(CliError, match="invalid ReplayRun spec"):
        build("sessionizer", "V2!", "earliest")


def test_dry_run_prints_the_replayrun_with_the_spec_file_merged_in(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = tmp_path / "spec.yaml"
    extra.write_text(yaml.safe_dump({"catchUp": {"stableFor": "10s"}, "validation": {"noData": "Pass"}}))
    argv = ["replay", "sessionizer", "--version", "v2", "--from", "earliest", "--until", "clicks:0=500"]
    assert main([*argv, "--throttle", "500", "--approval", "Automatic", "-f", str(extra), "--dry-run"]) == 0
    spec = yaml.safe_load(capsys.readouterr().out)["spec"]
    assert spec["until"] == {"offsets": [{"topic": "clicks", "partition": 0, "offset": 500}]}
    assert spec["throttle"] == {"recordsPerSecond": 500}
    assert spec["approval"] == "Automatic"
    assert spec["catchUp"] == {"stableFor": "10s"} and spec["validation"] == {"noData": "Pass"}


@pytest.mark.parametrize(
    ("verb", "obj", "acted", "says"),
    [
        ("approve", run("CuttingOver"), True, "approved"),
        ("approve", run("Validating"), True, "approved ahead"),
        ("abort", run("Aborted", cleanup="Pending"), True, "aborted"),
        ("abort", run("Observing"), False, "abort refused: the run is Observing"),
        (
            "rollback",
            run("RolledBack", cutover={"view": "sessions", "fromVersion": "v1", "toVersion": "v2"}),
            True,
            "serves v1 again",
        ),
        ("rollback", run("CatchingUp"), False, "rollback refused"),
    ],
)
def test_a_handled_request_is_judged_by_the_status_that_echoes_it(
    verb: str, obj: dict[str, Any], acted: bool, says: str
) -> None:
    ok, message = verdict(verb, "ReplayRun", obj)
    assert ok is acted and says in message


def test_a_streamjob_rollback_without_a_previous_version_is_refused() -> None:
    job = {
        "status": {
            "upgrade": {"step": "Idle"},
            "conditions": [  # as the operator writes it (machines/upgrade_requests.py)
                {
                    "type": "RolledBack",
                    "status": "False",
                    "reason": "RollbackUnavailable",
                    "message": "window over?",
                    "lastTransitionTime": "2026-11-29T03:00:00Z",
                }
            ],
        }
    }
    assert verdict("rollback", "StreamJob", job) == (False, "rollback refused: window over?")
    rolling = {"status": {"upgrade": {"step": "RollingBack"}, "activeVersion": "v1"}}
    assert verdict("rollback", "StreamJob", rolling)[0] is True


def test_an_ended_run_refuses_requests_up_front_except_the_abort_of_a_kept_failure() -> None:
    assert "has ended (Succeeded" in (
        refused_up_front("abort", "ReplayRun", run("Succeeded", reason="Succeeded")) or ""
    )
    assert refused_up_front("approve", "ReplayRun", FAILED) is not None
    assert refused_up_front("abort", "ReplayRun", FAILED) is None  # removes the output kept for inspection
    assert refused_up_front("approve", "ReplayRun", REPLAYING) is None


def test_on_a_terminal_the_view_has_a_progress_bar_and_the_last_events() -> None:
    from rich.console import Console

    from kappa.cli.status import rich_view

    events = [
        {
            "type": "Normal",
            "reason": "Replaying",
            "message": "replaying v2 into a new output",
            "at": NOW,
            "count": 1,
        }
    ]
    console = Console(width=108, record=True, force_terminal=True, color_system="truecolor")
    console.print(rich_view("ReplayRun", REPLAYING, events, NOW))
    text = console.export_text()
    assert "ReplayRun shop/sessionizer-v2" in text
    assert "━━━━━━━━━━━━╺" in text  # 41 % of a 30-cell bar
    assert "41% 410/1,000 records, 35 records/s, ETA 0m17s" in text
    assert "Last events" in text and "replaying v2 into a new output" in text


def test_a_streamjob_and_a_view_show_versions_gates_and_states() -> None:
    job = {
        "metadata": {"name": "sessionizer", "namespace": "shop"},
        "spec": {
            "version": "v1",
            "source": {"kafka": {"bootstrapServers": "kafka:9092"}, "topics": ["clicks"]},
            "output": {"table": {"base": "sessions"}, "view": "sessions"},
            "flink": {"image": "flink:2.3", "flinkVersion": "v2_0", "sql": ["SELECT 1"]},
        },
        "status": {
            "phase": "Running",
            "activeVersion": "v2",
            "stableVersion": "v2",
            "lag": 0,
            "deployments": [
                {"version": "v2", "deployment": "sessionizer-v2", "role": "active", "jobState": "RUNNING"}
            ],
            "upgrade": {"step": "Idle", "fromVersion": "v2", "gates": [{"name": "Running", "passed": True}]},
        },
    }
    text = plain("StreamJob", job, [], NOW)
    assert "spec v1, active v2, stable v2" in text
    assert "sessionizer-v2 (active, v2): job RUNNING" in text and "✓ Running" in text
    view = {
        "metadata": {"name": "sessions", "namespace": "shop"},
        "status": {
            "backend": "postgres",
            "activeVersion": "v2",
            "previousVersion": "v1",
            "versions": [
                {"name": "v1", "physical": "sessions_v1", "state": "Previous"},
                {"name": "v2", "physical": "sessions_v2", "state": "Active"},
            ],
        },
    }
    text = plain("MaterializedView", view, [], NOW)
    assert "Active:      v2, previous v1" in text and "v1: sessions_v1 (Previous)" in text
    assert outcome("StreamJob", job, "succeeded") is None  # no end: watched until --timeout or Ctrl-C


def test_a_status_behind_its_generation_and_a_condition_that_does_not_hold_are_shown() -> None:
    job = {
        "metadata": {"name": "sessionizer", "namespace": "shop", "generation": 4},
        "spec": {
            "version": "v3",
            "source": {"kafka": {"bootstrapServers": "kafka:9092"}, "topics": ["clicks"]},
            "output": {"table": {"base": "sessions"}},
            "flink": {"image": "flink:2.3", "flinkVersion": "v2_0", "sql": ["SELECT 1"]},
        },
        "status": {
            "observedGeneration": 3,
            "phase": "Running",
            "history": [{"version": "v2", "outcome": "RolledBack", "at": "2026-11-28T16:50:00Z"}],
            "conditions": [
                {
                    "type": "KafkaReachable",
                    "status": "False",
                    "reason": "KafkaUnreachable",
                    "message": "Kafka at kafka:9092 unreachable",
                    "lastTransitionTime": "2026-11-28T16:58:00Z",
                }
            ],
        },
    }
    text = plain("StreamJob", job, [], NOW)
    assert "Behind:      the operator has seen generation 3 of generation 4" in text
    assert (
        "✗ KafkaReachable (KafkaUnreachable)" in text
        and "✗ KafkaReachable: Kafka at kafka:9092 unreachable" in text
    )
    assert "History:     v2 RolledBack 9m00s ago" in text
