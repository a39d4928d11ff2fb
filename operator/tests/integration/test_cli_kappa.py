"""`kubectl kappa` as an on-call engineer runs it: found by kubectl on the PATH (a plugin), against the real
API server, Kafka and the running operator, in the ReplayRun stories' shop
(FKO and the jobs are the doubles)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from tests.doubles.pipeline import FakePipeline
from tests.integration.shop import Shop, phase, wait_run
from tests.integration.testbed import Kubectl

BIN = Path(sys.executable).parent  # where `pip install` put the kubectl-kappa console script
FAST = {"catchUp": {"maxLagRecords": 10, "stableFor": "2s", "timeout": "2m"}}


def kappa_env(kubectl: Kubectl) -> dict[str, str]:
    """The user's shell after the README's set-up: kubectl-kappa on the PATH, the test bed's kubeconfig."""
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "KUBECONFIG": str(kubectl.kubeconfig)}


def kubectl_kappa(kubectl: Kubectl, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "kappa", *args, "-n", str(kubectl.namespace)],
        env=kappa_env(kubectl),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spec_file(tmp_path: Path, **spec: object) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**FAST, **spec}))
    return str(path)


def replayruns(kubectl: Kubectl) -> list[str]:
    return [o["metadata"]["name"] for o in json.loads(kubectl("get", "rr", "-o", "json"))["items"]]


def test_replay_watch_and_approve_with_kubectl_kappa(
    shop: Shop, kubectl: Kubectl, pipeline: FakePipeline, tmp_path: Path
) -> None:
    ns = str(kubectl.namespace)
    context = kubectl("config", "current-context").strip()
    pipeline.pace(ns, "sessionizer-v2", 200)  # ~3 s of replay: the watch sees it progress
    created = kubectl_kappa(
        kubectl,
        "replay",
        "sessionizer",
        "--version",
        "v2",
        "--from",
        "earliest",
        "--approval",
        "Manual",
        "--rollback-window",
        "3s",
        "-f",
        spec_file(tmp_path),
        "--context",
        context,
    )
    assert created.returncode == 0, created.stderr
    assert "sessionizer-v2 created" in created.stdout
    assert kubectl.get("rr", "sessionizer-v2")["spec"]["approval"] == "Manual"
    started = time.monotonic()
    watch = subprocess.Popen(
        ["kubectl", "kappa", "status", "rr", "sessionizer-v2", "--watch", "-n", ns, "--timeout", "150"],
        env=kappa_env(kubectl),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_run(kubectl, "sessionizer-v2", "AwaitingApproval", timeout=90)
        waited = kubectl_kappa(kubectl, "status", "rr", "sessionizer-v2", "--watch", "--timeout", "1")
        assert waited.returncode == 6, waited.stdout + waited.stderr  # --timeout: its own exit code
        assert "timed out: ReplayRun" in waited.stdout and "phase=AwaitingApproval" in waited.stdout
        assert watch.poll() is None, "the watch ended before the run did"
        approved = kubectl_kappa(kubectl, "approve", "sessionizer-v2", "--id", "ticket-42", "--timeout", "60")
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert "approved" in approved.stdout
        out, err = watch.communicate(timeout=120)
    finally:
        watch.kill()
    print(f"\nstatus --watch (not a terminal), {time.monotonic() - started:.1f}s:\n{out}")
    assert watch.returncode == 0, out + err
    done = kubectl.get("rr", "sessionizer-v2")
    assert phase(done) == "Succeeded"
    assert done["status"]["handledRequests"]["approve"] == "ticket-42"
    assert shop.view_table() == "sessions_v2"
    # The plain lines show the way there: progress with a percent, the wait for approval, the end.
    assert "progress=" in out and "%" in out
    assert "phase=AwaitingApproval" in out
    assert "event Normal CutOver" in out or "phase=Observing" in out
    assert out.rstrip().splitlines()[-1].startswith(f"ReplayRun {ns}/sessionizer-v2 Succeeded (exit 0)")
    # An abort after the cutover is echoed and refused: its own exit code.
    refused = kubectl_kappa(kubectl, "abort", "sessionizer-v2", "--timeout", "30")
    assert refused.returncode == 7, refused.stdout + refused.stderr
    assert "abort refused: the run has ended (Succeeded" in refused.stdout
    # `get` is `status`, off a terminal in plain lines.
    shown = kubectl_kappa(kubectl, "get", "rr", "sessionizer-v2")
    assert shown.returncode == 0, shown.stderr
    assert "Succeeded" in shown.stdout and "✓ CountRatio" in shown.stdout


def test_status_watch_exits_non_zero_when_the_run_fails(shop: Shop, kubectl: Kubectl, tmp_path: Path) -> None:
    checks = [{"name": "revenue-negative", "query": "SELECT bool_and(revenue < 0) FROM {table}"}]
    created = kubectl_kappa(
        kubectl,
        "replay",
        "sessionizer",
        "--version",
        "v2",
        "--from",
        "earliest",
        "--approval",
        "Automatic",
        "-f",
        spec_file(tmp_path, validation={"sql": checks}),
        "--name",
        "wrong",
    )
    assert created.returncode == 0, created.stderr
    watched = kubectl_kappa(kubectl, "status", "rr", "wrong", "--watch", "--timeout", "120", timeout=150)
    assert watched.returncode == 3, watched.stdout + watched.stderr
    assert "phase=Failed reason=ValidationFailed" in watched.stdout
    assert "failed=sql/revenue-negative" in watched.stdout
    assert shop.view_table() == "sessions_v1"
    # Its output was kept for inspection: an abort removes it, and is acted on although the run has ended.
    aborted = kubectl_kappa(kubectl, "abort", "wrong", "--timeout", "60")
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert "aborted: what the run created is removed" in aborted.stdout
    assert phase(kubectl.get("rr", "wrong")) == "Aborted"


def test_plan_on_a_start_fallen_off_retention_says_so_and_creates_nothing(
    shop: Shop, kubectl: Kubectl, kafka_bootstrap: str
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_records([TopicPartition(shop.topic, 0, 20)]).values():
        future.result(30)
    start = ",".join(f"{shop.topic}:{p}=0" for p in range(3))
    plan = kubectl_kappa(kubectl, "replay", "sessionizer", "--version", "v2", "--from", start, "--plan")
    print(f"\n{plan.stdout}")
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert "✗ StartRetained StartDeletedByRetention: the start position is no longer" in plan.stdout
    assert f"{shop.topic}[0]: start 0 < log start 20" in plan.stdout
    assert "DELETED (20 records gone)" in plan.stdout
    assert "Preflight would fail (StartDeletedByRetention). Nothing was created." in plan.stdout
    assert replayruns(kubectl) == []
    # From the start of the retained log instead: it would pass, with the records and the estimated duration.
    plan = kubectl_kappa(
        kubectl,
        "replay",
        "sessionizer",
        "--version",
        "v2",
        "--from",
        "earliest",
        "--throttle",
        "50",
        "--plan",
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "Records to replay: 580" in plan.stdout  # 600 produced, 20 deleted
    assert "Estimated duration: 11s at 50 records/s" in plan.stdout
    assert "✓ FitsRetention FitsRetention: estimated replay 12s at 50 records/s" in plan.stdout
    dry = kubectl_kappa(
        kubectl, "replay", "sessionizer", "--version", "v2", "--from", "earliest", "--dry-run"
    )
    assert yaml.safe_load(dry.stdout)["spec"]["from"] == {"earliest": True}
    assert replayruns(kubectl) == []


def test_a_rollback_in_the_window_is_acted_on_and_the_watch_exits_rolled_back(
    shop: Shop, kubectl: Kubectl, tmp_path: Path
) -> None:
    # `replay --watch --watch-until cutover`: created and followed until the cutover, exit 0 in Observing.
    cut = kubectl_kappa(
        kubectl,
        "replay",
        "sessionizer",
        "--version",
        "v2",
        "--from",
        "earliest",
        "--approval",
        "Automatic",
        "--rollback-window",
        "5m",
        "-f",
        spec_file(tmp_path),
        "--watch",
        "--watch-until",
        "cutover",
    )
    assert cut.returncode == 0, cut.stdout + cut.stderr
    assert "phase=Observing" in cut.stdout and phase(kubectl.get("rr", "sessionizer-v2")) == "Observing"
    assert shop.view_table() == "sessions_v2"
    rolled = kubectl_kappa(kubectl, "rollback", "rr", "sessionizer-v2", "--id", "INC-7", "--timeout", "60")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "rolled back: the view serves v1 again" in rolled.stdout
    assert phase(kubectl.get("rr", "sessionizer-v2")) == "RolledBack"  # decided in the write that echoed it
    watched = kubectl_kappa(kubectl, "status", "rr", "sessionizer-v2", "--watch", "--timeout", "30")
    assert watched.returncode == 5, watched.stdout + watched.stderr
    assert "RolledBack (exit 5)" in watched.stdout
    kubectl.wait_for(
        "rr",
        "sessionizer-v2",
        lambda o: o["status"].get("cleanup") == "Done",
        timeout=30,
        what="switched back",
    )
    assert shop.view_table() == "sessions_v1"
