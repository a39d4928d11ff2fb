"""The Kappa story on real components: the demo sessionizer (examples/03 and 04) runs as Flink SQL on a real
Flink 2.3 session cluster through the operator's session runtime, reading a real Kafka and writing PostgreSQL,
and readers query the `sessions` view. No double plays any part of it."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
import yaml

from tests.integration.testbed import ROOT, KafkaTestbed, Kubectl, OperatorProcess, conditions

WINDOW = 20  # seconds: the replay's rollback window


def _demo() -> ModuleType:
    """examples/demo/producer.py: the clickstream and the independent reference sessionizer."""
    path = ROOT / "examples" / "demo" / "producer.py"
    spec = importlib.util.spec_from_file_location("kappa_demo_producer", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


demo = _demo()


def _example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "examples" / name).read_text()))


def _retarget(statements: list[str], topic: str, sessions: Sessions) -> list[str]:
    """The example's SQL, reading this test's topic and writing this test's schema on this test bed's
    PostgreSQL (the example's JDBC sink names the default test bed's port)."""
    port = psycopg.conninfo.conninfo_to_dict(sessions.uri).get("port") or "5432"
    return [
        s.replace("'topic' = 'clicks'", f"'topic' = '{topic}'")
        .replace(
            "'table-name' = '${KAPPA_OUTPUT_TABLE}'",
            f"'table-name' = '{sessions.schema}.${{KAPPA_OUTPUT_TABLE}}'",
        )
        .replace("127.0.0.1:55432/", f"127.0.0.1:{port}/")
        for s in statements
    ]


def rest(flink_url: str, path: str) -> Any:
    with urllib.request.urlopen(flink_url + path, timeout=10) as response:
        return json.loads(response.read())


def record(kubectl: Kubectl, deployment: str) -> dict[str, Any] | None:
    """The session runtime's record of a version, as the operator keeps it."""
    found = kubectl.run("get", "configmap", f"{deployment}.flink-session", "-o", "json", check=False)
    if found.returncode != 0:
        return None
    return dict(json.loads(json.loads(found.stdout)["data"]["record"]))


class Sessions:
    def __init__(self, uri: str, schema: str) -> None:
        self.uri, self.schema = uri, schema

    def rows(self, table: str = "sessions") -> set[tuple[str, int, int, int]]:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            found = conn.execute(
                f"SELECT user_id, (extract(epoch FROM session_start AT TIME ZONE 'UTC') * 1000)::bigint, "
                f"(extract(epoch FROM session_end AT TIME ZONE 'UTC') * 1000)::bigint, clicks "
                f"FROM {self.schema}.{table}"
            ).fetchall()
        return {(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in found}

    def view_table(self) -> str | None:
        with psycopg.connect(self.uri, autocommit=True) as conn:
            row = conn.execute(
                "SELECT table_name FROM information_schema.view_table_usage "
                "WHERE view_schema = %s AND view_name = 'sessions'",
                (self.schema,),
            ).fetchone()
        return str(row[0]) if row else None

    def wait_rows(
        self, expected: set[tuple[str, int, int, int]], timeout: float, table: str = "sessions"
    ) -> None:
        deadline = time.monotonic() + timeout
        got: set[tuple[str, int, int, int]] = set()
        while time.monotonic() < deadline:
            try:
                got = self.rows(table)
            except psycopg.errors.UndefinedTable:
                got = set()
            if got == expected:
                return
            time.sleep(1)
        raise AssertionError(
            f"{table}: {len(got)} rows, expected {len(expected)}; "
            f"missing {sorted(expected - got)[:3]}, unexpected {sorted(got - expected)[:3]}"
        )


def wait_state(flink_url: str, job_id: str, state: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    seen = rest(flink_url, f"/jobs/{job_id}")["state"]
    while seen != state and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = rest(flink_url, f"/jobs/{job_id}")["state"]
    return str(seen)


def phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


@pytest.fixture
def world(
    kubectl: Kubectl,
    kafka: KafkaTestbed,
    postgres_uri: str,
    flink_url: str,
    kappa_operator: OperatorProcess,
) -> Iterator[tuple[str, Sessions]]:
    """A topic, a schema with v1's empty table, the Secret and the `sessions` MaterializedView."""
    ns = str(kubectl.namespace)
    topic, schema = f"clicks-{ns}", ns.replace("-", "_")
    demo.ensure_topic(kafka.bootstrap, topic)
    ddl = (ROOT / "examples" / "demo" / "sessions.sql").read_text()
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        conn.execute(ddl)
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sessions-db"},
            "stringData": {"uri": postgres_uri},
        }
    )
    view = _example("02-materializedview-sessions.yaml")
    view["spec"]["backend"]["postgres"]["schema"] = schema
    kubectl.apply(view)
    wait_for_free_slots(flink_url)
    yield topic, Sessions(postgres_uri, schema)
    # The StreamJob's finalizer cancels its jobs on the session cluster: wait for it while the operator runs,
    # or the next test finds the cluster's two slots taken.
    kubectl.run("delete", "streamjob", "--all", "--timeout=120s", check=False)


def wait_for_free_slots(flink_url: str, slots: int = 2, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rest(flink_url, "/overview")["slots-available"] >= slots:
            return
        time.sleep(1)
    running = [j["name"] for j in rest(flink_url, "/jobs/overview")["jobs"] if j["state"] == "RUNNING"]
    raise AssertionError(f"the session cluster has no {slots} free slots; running: {running}")


def sessionizer(topic: str, sessions: Sessions, bootstrap: str, flink_url: str) -> dict[str, Any]:
    """examples/03 on the session cluster, reading this test's topic into this test's schema."""
    job = _example("03-streamjob-sessionizer.yaml")
    spec = job["spec"]
    spec["source"]["kafka"]["bootstrapServers"] = bootstrap
    spec["source"]["topics"] = [topic]
    spec["flink"]["sql"] = _retarget(spec["flink"]["sql"], topic, sessions)
    spec["flink"]["flinkConfiguration"]["execution.checkpointing.interval"] = "2s"
    spec["runtime"] = {"type": "Session", "session": {"restURL": flink_url}}
    spec["upgrade"] |= {"readinessTimeout": "3m", "stableFor": "5s"}
    return job


def closed(clicks: list[Any], gap_ms: int) -> set[tuple[str, int, int, int]]:
    """The rows the job has written once it read `clicks`: every session the watermark closed."""
    return {(s.user_id, s.session_start, s.session_end, s.clicks) for s in demo.emitted(clicks, gap_ms)}


def test_a_replay_on_real_flink_fixes_the_sessions_readers_get(
    world: tuple[str, Sessions], kubectl: Kubectl, kafka: KafkaTestbed, flink_url: str
) -> None:
    topic, sessions = world
    ns = str(kubectl.namespace)
    clicks = demo.events(4000)
    clicks += demo.ticks(clicks[-1].ts + 3_600_000)  # closes every session but the ticks' own
    demo.produce(clicks, bootstrap=kafka.bootstrap, topic=topic, rate=0)
    kubectl.apply(sessionizer(topic, sessions, kafka.bootstrap, flink_url))

    # v1, with its bug, serves the view: exactly the sessions a 1-minute gap cuts from what was produced.
    v1 = kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: (o.get("status") or {}).get("activeVersion") == "v1",
        timeout=180,
        what="v1 active on the session cluster",
    )
    assert v1["status"]["runtime"] == "Session"
    assert conditions(v1)["Ready"]["status"] == "True"
    buggy = {
        (s.user_id, s.session_start, s.session_end, s.clicks) for s in demo.emitted(clicks, demo.GAP_V1_MS)
    }
    assert buggy, "the clicks close sessions"
    sessions.wait_rows(buggy, timeout=120)
    assert sessions.view_table() == "sessions_v1"
    v1_job = record(kubectl, "sessionizer-v1")
    assert v1_job and rest(flink_url, f"/jobs/{v1_job['job_id']}")["state"] == "RUNNING"

    # The fix is replayed from the start of the log into sessions_v2, validated, and cut over.
    run = _example("04-replayrun-sessionizer-v2.yaml")
    run["spec"]["overrides"]["sql"] = _retarget(run["spec"]["overrides"]["sql"], topic, sessions)
    run["spec"] |= {
        "approval": "Automatic",
        "rollbackWindow": f"{WINDOW}s",
        "catchUp": {"maxLagRecords": 10, "stableFor": "4s"},
    }
    run["spec"]["validation"]["sql"] = [  # the example's checks, on this test's schema
        {**check, "query": check["query"].replace("FROM sessions_v1", f"FROM {sessions.schema}.sessions_v1")}
        for check in run["spec"]["validation"]["sql"]
    ]
    kubectl.apply(run)
    done = kubectl.wait_for(
        "rr",
        "sessionizer-v2",
        lambda o: phase(o) in ("Observing", "Succeeded", "Failed"),
        timeout=240,
        what="the cutover",
    )
    assert phase(done) != "Failed", json.dumps(done["status"], indent=1)
    assert conditions(done)["CutOver"]["status"] == "True"
    fixed = {
        (s.user_id, s.session_start, s.session_end, s.clicks) for s in demo.emitted(clicks, demo.GAP_V2_MS)
    }
    assert len(fixed) < len(buggy)
    assert sessions.view_table() == "sessions_v2"
    sessions.wait_rows(fixed, timeout=60)

    # v2 started fresh from its seeded group: a replay restores no state.
    v2_job = record(kubectl, "sessionizer-v2")
    assert v2_job and v2_job["submit_from"] is None
    assert (rest(flink_url, f"/jobs/{v2_job['job_id']}/checkpoints")["latest"] or {}).get("restored") is None

    # v1 stopped with a savepoint that is on disk, recorded in the run's status.
    observed = kubectl.wait_for(
        "rr",
        "sessionizer-v2",
        lambda o: (o["status"].get("cutover") or {}).get("previousSavepoint"),
        timeout=60,
        what="v1's final savepoint",
    )
    savepoint = observed["status"]["cutover"]["previousSavepoint"]
    assert Path(savepoint.removeprefix("file:")).is_dir()
    # Flink reports the stop's savepoint complete a moment before the job itself is FINISHED.
    assert wait_state(flink_url, v1_job["job_id"], "FINISHED") == "FINISHED"

    # After the rollback window, v1's job and group are gone; its table stays.
    kubectl.wait_for(
        "rr",
        "sessionizer-v2",
        lambda o: phase(o) == "Succeeded" and o["status"].get("cleanup") == "Done",
        timeout=WINDOW + 60,
        what="v1 decommissioned",
    )
    assert record(kubectl, "sessionizer-v1") is None
    assert not kafka.run(kafka.admin.committed(f"{ns}.sessionizer.v1"))
    assert kafka.run(kafka.admin.committed(f"{ns}.sessionizer.v2"))  # the live version's group
    assert sessions.rows("sessions_v1") == buggy


def _failing(statements: list[str]) -> list[str]:
    """The same job, with a projection that throws on every session it emits (a CAST that cannot succeed): the
    job submits and runs, then fails at run time on the first window that fires."""
    return [
        s.replace(
            "SELECT user_id, window_start, window_end, COUNT(*)",
            "SELECT user_id, window_start, window_end, CAST(CONCAT(CAST(COUNT(*) AS STRING), 'x') AS BIGINT)",
        )
        for s in statements
    ]


def active(kubectl: Kubectl, version: str, timeout: float) -> dict[str, Any]:
    return kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: (
            (o.get("status") or {}).get("activeVersion") == version
            and ((o["status"].get("upgrade") or {}).get("step") in (None, "Idle"))
        ),
        timeout=timeout,
        what=f"{version} active",
    )


def test_a_savepoint_upgrade_on_real_flink_keeps_state_and_a_failing_version_rolls_back(
    world: tuple[str, Sessions], kubectl: Kubectl, kafka: KafkaTestbed, flink_url: str
) -> None:
    topic, sessions = world
    timeline = demo.events(9000)
    a, b, c = timeline[:3000], timeline[3000:6000], timeline[6000:]
    demo.produce(a, bootstrap=kafka.bootstrap, topic=topic, rate=0)
    job = sessionizer(topic, sessions, kafka.bootstrap, flink_url)
    job["spec"]["upgrade"] |= {"maxRestarts": 1, "readinessTimeout": "90s"}
    kubectl.apply(job)
    active(kubectl, "v1", 180)
    sessions.wait_rows(closed(a, demo.GAP_V1_MS), timeout=120, table="sessions_v1")

    # v2 (same logic, a new version) starts from v1's savepoint: sessions open at the upgrade are continued.
    job["spec"]["version"] = "v2"
    kubectl.apply(job)
    v2 = active(kubectl, "v2", 180)
    savepoint = next(p["path"] for p in v2["status"]["savepoints"] if p["version"] == "v1")
    assert Path(savepoint.removeprefix("file:")).is_dir()
    v2_job = record(kubectl, "sessionizer-v2")
    assert v2_job and v2_job["submit_from"] == savepoint
    restored = rest(flink_url, f"/jobs/{v2_job['job_id']}/checkpoints")["latest"]["restored"]
    assert restored["is_savepoint"] is True
    demo.produce(b, bootstrap=kafka.bootstrap, topic=topic, rate=0)
    # The same table (a savepoint upgrade keeps its output), and exactly the sessions of a and b: no reset.
    sessions.wait_rows(closed(a + b, demo.GAP_V1_MS), timeout=120, table="sessions_v1")
    assert v2["status"]["outputVersions"]["v2"] == "v1"

    # v3 fails at run time: it rolls back on its own to v2, from the savepoint v2 took for the upgrade.
    job["spec"]["version"] = "v3"
    job["spec"]["flink"]["sql"] = _failing(job["spec"]["flink"]["sql"])
    job["spec"]["upgrade"]["stableFor"] = "30s"  # v3 fails only once c arrives, produced when it starts
    kubectl.apply(job)
    kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: (o["status"].get("upgrade") or {}).get("step") == "Starting",
        timeout=120,
        what="v3 starting from v2's savepoint",
    )
    demo.produce(c, bootstrap=kafka.bootstrap, topic=topic, rate=0)  # v3's windows fire, and it fails
    back = kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: conditions(o).get("RolledBack", {}).get("status") == "True",
        timeout=240,
        what="the automatic rollback",
    )
    assert back["status"]["activeVersion"] == "v2"
    assert conditions(back)["Stalled"]["status"] == "True"
    assert record(kubectl, "sessionizer-v3") is None
    # v2 resumed where it stopped: every click of a, b and c counted once.
    sessions.wait_rows(closed(a + b + c, demo.GAP_V1_MS), timeout=120, table="sessions_v1")
    v2_again = record(kubectl, "sessionizer-v2")
    assert v2_again and v2_again["attempt"] == 2 and v2_again["submit_from"]

    # Deleting the namespace stops the job on the session cluster: the StreamJob takes its final savepoint,
    # and the records' finalizer keeps them until the job is stopped.
    kubectl.run("delete", "namespace", str(kubectl.namespace), "--wait=false")
    live = f"/jobs/{v2_again['job_id']}"
    deadline = time.monotonic() + 120
    while rest(flink_url, live)["state"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(1)
    assert rest(flink_url, live)["state"] in ("FINISHED", "CANCELED")
