"""Infrastructure faults during a replay, on the real test bed: PostgreSQL down at the cutover, the API
server restarted during the cutover, and the Kafka broker restarted during the replay. Each story stops and
starts the real process (testbed/postgres.sh, testbed/controlplane.sh stop-apiserver, testbed/kafka.sh) and
checks what a user would: the run ends Succeeded; readers of the view only ever see one whole version, and the
new one only once the switch is complete; every input record is counted once in the output (printed as
input/output); the conditions said what happened during the outage; and nothing read as `AliasMoved`.

The PostgreSQL and API-server stories run the shop of test_replayrun.py (FKO and the job inside each
FlinkDeployment played by the doubles, records really moved Kafka → PostgreSQL). The Kafka story runs the
demo sessionizer as Flink SQL on the real Flink session cluster, where a broker restart meets Flink's own
Kafka source and the operator's Kafka clients.

Runtime of the calls, measured on 2 cores at a load average of ~50 (other sessions' tests): PostgreSQL
69 s, API server 82 s, Kafka on real Flink 164 s; 7 min for the file with its setup (session fixtures).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.conninfo
import pytest

from tests.doubles.double import Double
from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.pipeline import FakePipeline
from tests.integration.shop import Shop, reasons, replayrun, wait_run
from tests.integration.test_flink_session import (  # the real-Flink world: topic, schema, view
    Sessions,
    _example,
    _retarget,
    closed,
    demo,
    record,
    rest,
    sessionizer,
    world,  # noqa: F401  (a fixture)
)
from tests.integration.testbed import ROOT, KafkaTestbed, Kubectl, OperatorProcess, conditions

TESTBED = ROOT / "testbed"
WINDOW = "5s"  # the runs' rollback window: Succeeded follows the cutover soon


def bed(script: str, command: str, timeout: float = 180) -> None:
    """Run a test-bed script with this session's environment (its ports and state directory)."""
    done = subprocess.run(
        ["bash", str(TESTBED / script), command], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{script} {command} failed: {done.stderr[-2000:]}"


@dataclass
class Reader:
    """A reader of the view, about 50 queries a second: which versions each answer held, or the error."""

    uri: str
    schema: str
    answers: list[tuple[float, frozenset[str], int]] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.uri, autocommit=True, connect_timeout=2) as conn:
                    conn.execute("SET statement_timeout = '5s'")
                    while not self.stop.is_set():
                        rows = conn.execute(f"SELECT version FROM {self.schema}.sessions").fetchall()
                        self.answers.append((time.monotonic(), frozenset(r[0] for r in rows), len(rows)))
                        time.sleep(0.02)
            except psycopg.Error as exc:
                self.errors.append((time.monotonic(), str(exc).splitlines()[0] if str(exc) else ""))
                time.sleep(0.2)

    def check_all_or_nothing(self, old: str, new: str) -> None:
        """Every answer is one whole version, never empty; the old one until the first answer from the new
        one, and the new one ever after."""
        assert self.answers, "the reader got no answer at all"
        assert all(count > 0 for _, _, count in self.answers), "an empty answer"
        assert all(len(v) == 1 for _, v, _ in self.answers), "an answer mixing versions"
        firsts = [at for at, v, _ in self.answers if v == {new}]
        assert firsts, f"the reader never saw {new}"
        assert all(v == {old} for at, v, _ in self.answers if at < firsts[0])
        assert all(v == {new} for at, v, _ in self.answers if at >= firsts[0]), f"went back to {old}"


@contextmanager
def reading(shop: Shop) -> Iterator[Reader]:
    reader = Reader(shop.postgres_uri, shop.schema)
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    try:
        yield reader
    finally:
        reader.stop.set()
        thread.join(10)


@contextmanager
def report_holding_the_view(shop: Shop) -> Iterator[psycopg.Connection[Any]]:
    """A long report: a transaction that read the view and stays open, so its lock holds the switch (which
    takes the view's exclusive lock) back, retried, and the run stays in CuttingOver until it ends."""
    conn = psycopg.connect(shop.postgres_uri)
    try:
        conn.execute(f"SELECT count(*) FROM {shop.schema}.sessions").fetchone()
        yield conn
    finally:
        with suppress(psycopg.Error):
            conn.close()


def totals(shop: Shop) -> tuple[int, int]:
    """(input records, output records): records produced, and events counted in the table the view reads."""
    with psycopg.connect(shop.postgres_uri, autocommit=True) as conn:
        row = conn.execute(f"SELECT coalesce(sum(events), 0) FROM {shop.schema}.sessions").fetchone()
    return len(shop.produced), int(row[0]) if row else 0


def wait_counted(shop: Shop, timeout: float = 60) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    counts = totals(shop)
    while counts[0] != counts[1] and time.monotonic() < deadline:
        time.sleep(0.5)
        counts = totals(shop)
    return counts


class Watch:
    """Every distinct (Stalled reason, phase) of a run, polled through the API (which may be down)."""

    def __init__(self, kubectl: Kubectl, name: str) -> None:
        self.kubectl, self.name = kubectl, name
        self.seen: list[tuple[str | None, str | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            got = self.kubectl.run("get", "rr", self.name, "-o", "json", check=False)
            if got.returncode == 0:
                obj = json.loads(got.stdout)
                stalled = conditions(obj).get("Stalled", {})
                entry = (
                    stalled.get("reason") if stalled.get("status") == "True" else None,
                    (obj.get("status") or {}).get("phase"),
                )
                if not self.seen or self.seen[-1] != entry:
                    self.seen.append(entry)
            time.sleep(0.3)

    def reasons(self) -> set[str]:
        return {r for r, _ in self.seen if r}

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def outage_failures(double: Double, namespace: str, *signs: str) -> int:
    """Take the failures the outage caused in this namespace's jobs out of the double's errors (which the
    session asserts empty), as Flink's restart strategy absorbs them; any other error stays and fails."""
    with double._lock:
        caused = [e for e in double.errors if f" {namespace}/" in e and any(s in e for s in signs)]
        double.errors[:] = [e for e in double.errors if e not in caused]
    return len(caused)


PG_DOWN = (
    "terminating connection",
    "Connection refused",
    "server closed the connection",
    "connection failed",
)
API_DOWN = ("Connection refused", "Max retries exceeded", "(503)", "(403)", "(500)")


def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.3)


def test_postgres_down_at_the_cutover_reads_as_an_outage_and_the_run_completes_after_it(
    shop: Shop,
    kubectl: Kubectl,
    kappa_operator: OperatorProcess,
    pipeline: FakePipeline,
    request: pytest.FixtureRequest,
) -> None:
    """69 s: PostgreSQL stops while the switch is under way and stays down 30 s."""
    ns = str(kubectl.namespace)
    request.addfinalizer(lambda: outage_failures(pipeline, ns, *PG_DOWN))  # also when the story fails
    kubectl.apply(replayrun("fix-revenue", approval="Manual", rollbackWindow=WINDOW))
    wait_run(kubectl, "fix-revenue", "AwaitingApproval", timeout=120)
    watch = Watch(kubectl, "fix-revenue")
    try:
        with reading(shop) as reader:
            with report_holding_the_view(shop):
                kubectl("annotate", "rr", "fix-revenue", "kappa.dev/approve=ticket-1")
                wait_run(kubectl, "fix-revenue", "CuttingOver", timeout=60)
                time.sleep(1)  # the switch is waiting for the view's lock
                bed("postgres.sh", "down")  # a fast shutdown: every session ends, the report's too
            try:
                down_at = time.monotonic()
                shop.produce(100)  # live traffic while the serving database is away
                outage = kubectl.wait_for(
                    "rr",
                    "fix-revenue",
                    lambda o: conditions(o).get("Stalled", {}).get("reason") == "BackendUnavailable",
                    timeout=25,
                    what="Stalled BackendUnavailable",
                )
                assert outage["status"]["phase"] == "CuttingOver"  # the phase and its deadline stay
                message = conditions(outage)["Stalled"]["message"]
                # Said by the reconcile that found it ("...; retrying") or by the switch it cut off
                # ("...; CutOver is retried").
                assert re.match(
                    r"PostgreSQL at 127\.0\.0\.1:\d+ unreachable: .*; (retrying|CutOver is retried)", message
                )
                time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
                during = kubectl.get("rr", "fix-revenue")
                assert during["status"]["phase"] == "CuttingOver"
                assert conditions(during)["Stalled"]["reason"] == "BackendUnavailable"
            finally:
                bed("postgres.sh", "up")
            done = wait_run(kubectl, "fix-revenue", "Observing", "Succeeded", timeout=60)
            assert conditions(done)["CutOver"]["status"] == "True"
            time.sleep(1)
        reader.check_all_or_nothing("v1", "v2")
        wait_run(kubectl, "fix-revenue", "Succeeded", timeout=60)
    finally:
        watch.close()
    assert shop.view_table() == "sessions_v2"
    assert "AliasMoved" not in watch.reasons(), watch.seen
    assert "BackendUnavailable" in watch.reasons(), watch.seen
    events = reasons(kubectl, "fix-revenue")
    assert "AliasMoved" not in events
    assert events.count("BackendUnavailable") == 1, events  # said once, not on every retry
    produced, counted = wait_counted(shop)
    restarts = outage_failures(pipeline, ns, *PG_DOWN)
    print(
        f"\npostgres down 30 s at the cutover: input {produced} records, output {counted} records "
        f"(the jobs failed {restarts} times on the outage and restarted)"
    )
    assert counted == produced
    assert shop.read_view() == ({"v2"}, shop.truth())


def test_an_api_server_restart_during_the_cutover_is_recorded_once_it_is_back(
    shop: Shop,
    kubectl: Kubectl,
    kappa_operator: OperatorProcess,
    fko: FakeFlinkOperator,
    pipeline: FakePipeline,
    request: pytest.FixtureRequest,
) -> None:
    """82 s: the API server stops while the switch waits for the view's lock; the switch then completes in
    PostgreSQL while the API server is away, and the run records it once the API server is back."""
    # The switch keeps asking for the view's lock for about a minute (30 tries of 2 s): longer than the API
    # server takes to stop, so that it goes through while the API server is away.
    ns = str(kubectl.namespace)
    request.addfinalizer(
        lambda: outage_failures(fko, ns, *API_DOWN) + outage_failures(pipeline, ns, *API_DOWN)
    )
    retries = {"spec": {"backend": {"postgres": {"retries": 30}}}}
    kubectl("patch", "mv", "sessions", "--type=merge", "-p", json.dumps(retries))
    kubectl.apply(replayrun("fix-revenue", approval="Manual", rollbackWindow=WINDOW))
    wait_run(kubectl, "fix-revenue", "AwaitingApproval", timeout=120)
    with reading(shop) as reader:
        with report_holding_the_view(shop):
            kubectl("annotate", "rr", "fix-revenue", "kappa.dev/approve=ticket-1")
            wait_run(kubectl, "fix-revenue", "CuttingOver", timeout=60)
            down_at = time.monotonic()
            bed("controlplane.sh", "stop-apiserver")  # SIGTERM; ~12 s until it has exited
            assert kubectl.run("get", "rr", "fix-revenue", check=False).returncode != 0
        try:
            # The report ended: the switch goes through with nobody to tell.
            until(lambda: shop.view_table() == "sessions_v2", 30, "the switch while the API server is down")
            shop.produce(100)
            time.sleep(max(0.0, 20 - (time.monotonic() - down_at)))
            assert kappa_operator.exited() is None, "the operator died with the API server away"
        finally:
            bed("controlplane.sh", "up", timeout=300)
        back_at = time.monotonic()
        done = wait_run(kubectl, "fix-revenue", "Observing", "Succeeded", timeout=90)
        recorded_after = time.monotonic() - back_at
        assert recorded_after < 20, f"the cutover was recorded only {recorded_after:.0f} s after"
        assert conditions(done)["CutOver"]["status"] == "True"
        assert (done["status"]["cutover"]["fromVersion"], done["status"]["cutover"]["toVersion"]) == (
            "v1",
            "v2",
        )
        time.sleep(1)
    reader.check_all_or_nothing("v1", "v2")
    done = wait_run(kubectl, "fix-revenue", "Succeeded", timeout=60)
    assert "AliasMoved" not in reasons(kubectl, "fix-revenue")
    assert [t["phase"] for t in done["status"]["transitions"]][-3:] == [
        "CuttingOver",
        "Observing",
        "Succeeded",
    ]
    job = kubectl.wait_for(
        "sj", "sessionizer", lambda o: o["status"].get("activeVersion") == "v2", timeout=30, what="v2 live"
    )
    assert job["status"]["promotion"]["run"] == "fix-revenue"
    mv = kubectl.get("mv", "sessions")
    assert (mv["status"]["activeVersion"], mv["status"]["previousVersion"]) == ("v2", "v1")
    produced, counted = wait_counted(shop)
    failures = outage_failures(fko, ns, *API_DOWN) + outage_failures(pipeline, ns, *API_DOWN)
    print(
        f"\nAPI server restarted during the cutover: input {produced} records, output {counted} records; "
        f"the cutover was recorded {recorded_after:.0f} s after the API server was back "
        f"({failures} failed calls of the doubles while it was away)"
    )
    assert counted == produced
    assert shop.read_view() == ({"v2"}, shop.truth())
    assert kappa_operator.exited() is None


def job_state(kubectl: Kubectl, flink_url: str, deployment: str) -> str | None:
    """The state of a version's job on the session cluster, as Flink's REST API reports it."""
    found = record(kubectl, deployment)
    if not found or not found.get("job_id"):
        return None
    try:
        return str(rest(flink_url, f"/jobs/{found['job_id']}")["state"])
    except urllib.error.HTTPError:
        return None  # submitted, not yet known to the JobManager


def _on_this_postgres(statements: list[str], postgres_uri: str) -> list[str]:
    """The example's JDBC sink names the default test-bed port; point it at this session's PostgreSQL."""
    port = psycopg.conninfo.conninfo_to_dict(postgres_uri).get("port") or "5432"
    return [s.replace("127.0.0.1:55432/", f"127.0.0.1:{port}/") for s in statements]


@pytest.mark.timeout(420)
@pytest.mark.parametrize(
    "stop_at",
    [
        "reading",  # the replay job reads, throttled
        pytest.param(
            "set-up",  # as the run enters Replaying: the group, table and job are being set up
            marks=pytest.mark.skipif(
                not os.environ.get("KAPPA_INFRA_FAULTS_ALL"),
                reason="a second 3-minute variant; KAPPA_INFRA_FAULTS_ALL=1 runs it",
            ),
        ),
    ],
)
def test_a_kafka_broker_restart_during_a_replay_on_real_flink_loses_no_record(
    world: tuple[str, Sessions],  # noqa: F811  (the fixture, imported above)
    kubectl: Kubectl,
    kafka: KafkaTestbed,
    flink_url: str,
    postgres_uri: str,
    stop_at: str,
) -> None:
    """164 s: the broker stops half-way through a throttled replay on the session cluster, stays away 40 s
    (longer than the operator's Kafka calls wait), and comes back; Flink's sources reconnect on their own."""
    topic, sessions = world
    clicks = demo.events(6000)
    ticks = demo.ticks(clicks[-1].ts + 3_600_000)  # closes every session of the clicks
    demo.produce(clicks + ticks, bootstrap=kafka.bootstrap, topic=topic, rate=0)
    job = sessionizer(topic, sessions, kafka.bootstrap, flink_url)
    job["spec"]["flink"]["sql"] = _on_this_postgres(job["spec"]["flink"]["sql"], postgres_uri)
    kubectl.apply(job)
    kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: (o.get("status") or {}).get("activeVersion") == "v1",
        timeout=180,
        what="v1 active on the session cluster",
    )
    sessions.wait_rows(closed(clicks + ticks, demo.GAP_V1_MS), timeout=120)

    run = _example("04-replayrun-sessionizer-v2.yaml")
    sql = _retarget(run["spec"]["overrides"]["sql"], topic, sessions)
    run["spec"]["overrides"]["sql"] = _on_this_postgres(sql, postgres_uri)
    run["spec"] |= {
        "approval": "Automatic",
        "rollbackWindow": "10s",
        "catchUp": {"maxLagRecords": 10, "stableFor": "4s"},
        "throttle": {"recordsPerSecond": 200},  # tens of seconds of replay: the broker stops in the middle
    }
    run["spec"]["validation"]["sql"] = [
        {**c, "query": c["query"].replace("FROM sessions_v1", f"FROM {sessions.schema}.sessions_v1")}
        for c in run["spec"]["validation"]["sql"]
    ]
    kubectl.apply(run)
    watch = Watch(kubectl, "sessionizer-v2")
    try:
        kubectl.wait_for(
            "rr",
            "sessionizer-v2",
            lambda o: (o.get("status") or {}).get("phase") == "Replaying",
            timeout=120,
            what="the replay",
        )
        if stop_at == "reading":
            until(lambda: job_state(kubectl, flink_url, "sessionizer-v2") == "RUNNING", 60, "the replay job")
            time.sleep(5)  # reading, throttled: about a sixth of the history
        bed("kafka.sh", "down", timeout=60)
        down_at = time.monotonic()
        try:
            at_stop = kubectl.get("rr", "sessionizer-v2")["status"]
            assert at_stop["phase"] == "Replaying", at_stop["phase"]  # the broker went during the replay
            assert sessions.view_table() == "sessions_v1"
            kubectl.wait_for(
                "rr",
                "sessionizer-v2",
                lambda o: conditions(o).get("Stalled", {}).get("reason") == "KafkaUnreachable",
                timeout=90,  # the operator's Kafka calls wait 30 s each before they give up
                what="Stalled KafkaUnreachable",
            )
            time.sleep(max(0.0, 40 - (time.monotonic() - down_at)))
        finally:
            bed("kafka.sh", "up", timeout=180)
        done = kubectl.wait_for(
            "rr",
            "sessionizer-v2",
            lambda o: (o.get("status") or {}).get("phase") in ("Observing", "Succeeded", "Failed"),
            timeout=240,
            what="the cutover",
        )
        assert done["status"]["phase"] != "Failed", json.dumps(done["status"], indent=1)
        assert sessions.view_table() == "sessions_v2"
        fixed = closed(clicks + ticks, demo.GAP_V2_MS)
        sessions.wait_rows(fixed, timeout=60)
        kubectl.wait_for(
            "rr",
            "sessionizer-v2",
            lambda o: (o.get("status") or {}).get("phase") == "Succeeded",
            timeout=80,
            what="Succeeded",
        )
    finally:
        watch.close()
    assert "AliasMoved" not in watch.reasons(), watch.seen
    assert "KafkaUnreachable" in watch.reasons(), watch.seen
    assert reasons(kubectl, "sessionizer-v2").count("KafkaUnreachable") == 1
    counted = sum(row[3] for row in sessions.rows())  # through the view: every click of a closed session
    progress = at_stop.get("progress") or {}
    print(
        f"\nKafka broker restarted during the replay ({stop_at}): input {len(clicks)} clicks "
        f"(+{len(ticks)} watermark ticks, in sessions still open), output {counted} clicks in "
        f"{len(fixed)} sessions; at the stop {progress.get('consumed', 0)} of "
        f"{progress.get('target', '?')} records were replayed and committed"
    )
    assert counted == len(clicks)
