"""Runs the sessionizer SQL of examples/03 (v1) and examples/04 (v2) on a real Flink session cluster through
its REST API, reading Kafka and writing PostgreSQL, and checks every row against producer.sessionize(). This
is the proof behind examples/demo/FINDINGS.md, and its small REST helpers show the calls the operator's
client makes.

    python examples/demo/run_on_flink.py demo        v1 live at 1000 clicks/s, stop with savepoint, more
                                                     clicks, restore under a new job id (rows continue
                                                     exactly), reuse of a finished job id, savepoint
                                                     disposal, then the v2 replay
    python examples/demo/run_on_flink.py failure     a statement that fails at run time (CAST of a bad record)
    python examples/demo/run_on_flink.py bench [N]   N clicks (default 2 000 000) pre-produced; a plain
                                                     consumer's read rate; v2 replaying them from a seeded
                                                     group

Needs: testbed/flink.sh up, testbed/kafka.sh up, testbed/postgres.sh up; confluent-kafka, psycopg and PyYAML.
Each run uses its own topic (kappa-demo-clicks-<run>) and tables (demo_<run>_sessions_v1/_v2), substituted
for the YAML's `clicks` and ${KAPPA_OUTPUT_TABLE}, and removes them, its jobs, groups and savepoints at the
end (--keep keeps them). Every REST exchange is appended to --log (JSON lines).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import producer as clicks

REPO = Path(__file__).resolve().parents[2]
FLINK = os.environ.get("KAPPA_FLINK_URL", "http://127.0.0.1:18081")
BOOTSTRAP = os.environ.get("KAPPA_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
PG_URI = os.environ.get("KAPPA_PG_URI", "postgresql://kappa@127.0.0.1:55432/kappa")
NAMESPACE = "kappa-demo"
LOG = Path("/tmp/kappa-demo-rest.jsonl")
_VARIABLE = re.compile(r"\$\{(KAPPA_[A-Z_]+)\}")


# --- Flink REST ---------------------------------------------------------------------------------------------


class RestError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {json.dumps(body)[:2000]}")
        self.status, self.body = status, body


def rest(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    ctype: str | None = None,
    timeout: float = 120,
) -> Any:
    """One REST call; JSON in and out. Errors raise RestError with Flink's {"errors": [...]} body."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(FLINK + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype or "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    answer = json.loads(text) if text else None
    with LOG.open("a") as log:
        log.write(
            json.dumps(
                {
                    "t": time.time(),
                    "ms": round((time.monotonic() - started) * 1000),
                    "method": method,
                    "path": path,
                    "body": body if raw is None else "<multipart>",
                    "status": status,
                    "answer": answer,
                }
            )
            + "\n"
        )
    if status >= 400:
        raise RestError(status, answer)
    return answer


def upload_jar(path: Path) -> str:
    """POST /jars/upload (multipart, field `jarfile`); returns the jar id (`<uuid>_<name>.jar`)."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="jarfile"; filename="{path.name}"\r\n'
            "Content-Type: application/java-archive\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = rest("POST", "/jars/upload", raw=body, ctype=f"multipart/form-data; boundary={boundary}")
    jar_id = str(answer["filename"]).rsplit("/", 1)[-1]
    _UPLOADED.append(jar_id)
    return jar_id


_UPLOADED: list[str] = []


def forget_jars() -> None:
    """DELETE /jars/{id} for every jar this process uploaded (they stay in web.tmpdir otherwise)."""
    while _UPLOADED:
        with contextlib.suppress(RestError):
            rest("DELETE", f"/jars/{_UPLOADED.pop()}")


def run_jar(
    jar_id: str,
    statements: list[str],
    job_id: str,
    *,
    savepoint: str | None = None,
    conf: dict[str, str] | None = None,
    allow_non_restored: bool = False,
) -> dict[str, Any]:
    """POST /jars/{id}/run: the SQL runner with the statements as programArgsList, under a fixed job id."""
    body: dict[str, Any] = {"programArgsList": statements, "jobId": job_id}
    if savepoint:
        body["savepointPath"] = savepoint
        body["allowNonRestoredState"] = allow_non_restored
    if conf:
        body["flinkConfiguration"] = conf
    return dict(rest("POST", f"/jars/{jar_id}/run", body))


def job(job_id: str) -> dict[str, Any]:
    return dict(rest("GET", f"/jobs/{job_id}"))


def wait_running(job_id: str, timeout: float = 120) -> tuple[float, float]:
    """Seconds until the job is RUNNING and until all its vertices are RUNNING."""
    started, job_running = time.monotonic(), None
    while time.monotonic() - started < timeout:
        j = job(job_id)
        if j["state"] == "RUNNING" and job_running is None:
            job_running = time.monotonic() - started
        if j["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in j["vertices"]):
            return job_running or 0.0, time.monotonic() - started
        if j["state"] in ("FAILED", "CANCELED", "FINISHED"):
            raise RuntimeError(f"job {job_id} is {j['state']}: {rest('GET', f'/jobs/{job_id}/exceptions')}")
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} not RUNNING after {timeout}s")


def wait_checkpoint(job_id: str, timeout: float = 120) -> dict[str, Any]:
    """Until a checkpoint completed after the job started; returns GET /jobs/{id}/checkpoints."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cps = rest("GET", f"/jobs/{job_id}/checkpoints")
        if (cps.get("latest") or {}).get("completed"):
            return dict(cps)
        time.sleep(0.5)
    raise TimeoutError(f"no completed checkpoint of {job_id} in {timeout}s")


def stop_with_savepoint(job_id: str, directory: str, timeout: float = 120) -> str:
    """POST /jobs/{id}/stop, poll GET /jobs/{id}/savepoints/{rid}; returns the savepoint path."""
    rid = rest("POST", f"/jobs/{job_id}/stop", {"targetDirectory": directory, "drain": False})["request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = rest("GET", f"/jobs/{job_id}/savepoints/{rid}")
        if st["status"]["id"] == "COMPLETED":
            op = st["operation"]
            if "failure-cause" in op:
                raise RuntimeError(f"savepoint failed: {op['failure-cause']}")
            return str(op["location"])
        time.sleep(0.2)
    raise TimeoutError("stop-with-savepoint did not complete")


def wait_state(job_id: str, states: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = job(job_id)["state"]
        if s in states:
            return str(s)
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not in {states}")


def cancel(job_id: str) -> None:
    try:
        if job(job_id)["state"] not in ("FINISHED", "CANCELED", "FAILED"):
            rest("PATCH", f"/jobs/{job_id}?mode=cancel")
            wait_state(job_id, {"CANCELED", "FAILED", "FINISHED"})
    except RestError:
        pass


def job_id_for(*parts: str) -> str:
    """A fixed, reproducible 32-hex job id per (run, version, attempt), as the operator would derive one."""
    return hashlib.md5("/".join(parts).encode()).hexdigest()


# --- SQL from the examples ----------------------------------------------------------------------------------


def statements(version: str) -> list[str]:
    """v1: spec.flink.sql of examples/03; v2: spec.overrides.sql of examples/04."""
    if version == "v1":
        return list(
            yaml.safe_load((REPO / "examples/03-streamjob-sessionizer.yaml").read_text())["spec"]["flink"][
                "sql"
            ]
        )
    return list(
        yaml.safe_load((REPO / "examples/04-replayrun-sessionizer-v2.yaml").read_text())["spec"]["overrides"][
            "sql"
        ]
    )


def render(sql: list[str], variables: dict[str, str], topic: str) -> list[str]:
    """Substitute ${KAPPA_*} as the operator does (kappa.render.flink.substitute: unknown names are errors)
    and point the source at this run's topic."""

    def value(m: re.Match[str]) -> str:
        return variables[m.group(1)]

    out = [_VARIABLE.sub(value, s) for s in sql]
    return [s.replace("'topic' = 'clicks'", f"'topic' = '{topic}'") for s in out]


def variables(version: str, *, table: str, startup: str, bounded: str = "unbounded") -> dict[str, str]:
    group = f"{NAMESPACE}.sessionizer.{version}.{RUN}"
    return {
        "KAPPA_VERSION": version,
        "KAPPA_GROUP_ID": group,
        "KAPPA_CLIENT_ID": group,
        "KAPPA_TRANSACTIONAL_ID_PREFIX": group,
        "KAPPA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "KAPPA_STARTUP_MODE": startup,
        "KAPPA_STARTUP_TIMESTAMP": "",
        "KAPPA_OUTPUT_TOPIC": "",
        "KAPPA_OUTPUT_TABLE": table,
        "KAPPA_MAX_RECORDS_PER_SECOND": "",
        "KAPPA_BOUNDED_MODE": bounded,
        "KAPPA_BOUNDED_TIMESTAMP": "",
        "KAPPA_BOUNDED_OFFSETS": "",
    }


# --- Kafka and PostgreSQL -----------------------------------------------------------------------------------


def end_offsets(topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {"bootstrap.servers": BOOTSTRAP, "group.id": "kappa-demo-probe", "enable.auto.commit": False}
    )
    try:
        out = {}
        for p in range(clicks.PARTITIONS):
            out[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        return out
    finally:
        c.close()


def committed(group: str, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(clicks.PARTITIONS)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def seed_group(group: str, topic: str, offsets: dict[int, int]) -> None:
    """What the operator does before a replay: commit the start offsets for a group with no members."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in offsets.items()])
    admin.alter_consumer_group_offsets([req])[group].result(30)


def delete_kafka(topic: str, groups: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for attempt in range(10):  # a broker that just started answers COORDINATOR_LOAD_IN_PROGRESS for a while
        left = []
        for g, f in (admin.delete_consumer_groups(groups, request_timeout=30) if groups else {}).items():
            try:
                f.result(30)
            except Exception as e:
                if "GROUP_ID_NOT_FOUND" not in str(e) and attempt < 9:
                    left.append(g)
                elif "GROUP_ID_NOT_FOUND" not in str(e):
                    print(f"  group {g}: {e}")
        if not left:
            break
        groups = left
        time.sleep(1)
    for _t, f in admin.delete_topics([topic], operation_timeout=30).items():
        f.result(30)


def pg():
    import psycopg

    return psycopg.connect(PG_URI, autocommit=True)


def create_table(name: str) -> None:
    ddl = (REPO / "examples/demo/sessions.sql").read_text().replace("sessions_v1", name)
    with pg() as conn:
        conn.execute(ddl)


def rows(table: str) -> list[tuple[Any, ...]]:
    with pg() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                f"SELECT user_id, session_start, session_end, clicks FROM {table} "
                "ORDER BY user_id, session_start"
            )
        ]


def count(table: str) -> tuple[int, int]:
    with pg() as conn:
        n, s = conn.execute(f"SELECT count(*), coalesce(sum(clicks), 0) FROM {table}").fetchone()
        return int(n), int(s)


def wait_rows(table: str, expected: list[clicks.Session], timeout: float = 180) -> float:
    """Until the table holds exactly the expected rows; returns the seconds waited."""
    want = [s.row() for s in expected]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if count(table)[0] >= len(want):
            break
        time.sleep(0.5)
    time.sleep(1.5)  # a late extra row would show now
    got = rows(table)
    if got != want:
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        raise AssertionError(
            f"{table}: {len(got)} rows, expected {len(want)}; missing {missing}; extra {extra}"
        )
    return time.monotonic() - started


# --- scenarios ----------------------------------------------------------------------------------------------

RUN = os.environ.get("KAPPA_DEMO_RUN") or uuid.uuid4().hex[:6]


def say(*a: Any) -> None:
    print(*a, flush=True)


def show(title: str, obj: Any) -> None:
    say(f"--- {title}\n{json.dumps(obj, indent=1)[:6000]}")


def demo(args: argparse.Namespace) -> None:
    topic, t1, t2 = f"kappa-demo-clicks-{RUN}", f"demo_{RUN}_sessions_v1", f"demo_{RUN}_sessions_v2"
    sp_dir = f"file://{Path.home()}/.cache/kappa-operator/testbed/flink/savepoints/demo-{RUN}"
    jar = Path(os.popen(f"bash {REPO}/testbed/flink.sh runner-jar").read().strip())
    v1vars = variables("v1", table=t1, startup="earliest-offset")
    v2vars = variables("v2", table=t2, startup="group-offsets")
    jobs: list[str] = []
    n1, n2 = args.clicks, args.clicks
    timeline = clicks.events(n1 + n2)
    phase1, phase2 = timeline[:n1], timeline[n1:]
    tick = clicks.ticks(timeline[-1].ts + 3_600_000)
    try:
        clicks.ensure_topic(BOOTSTRAP, topic)
        create_table(t1)
        create_table(t2)
        jar_id = upload_jar(jar)
        say(f"run {RUN}: topic {topic}, tables {t1}/{t2}, jar {jar_id}")

        # 1. v1 from earliest, live traffic at the producer's default rate.
        j1 = job_id_for(RUN, "v1", "1")
        jobs.append(j1)
        conf = {"execution.checkpointing.interval": "5s"}
        t0 = time.monotonic()
        answer = run_jar(jar_id, render(statements("v1"), v1vars, topic), j1, conf=conf)
        t_answer = time.monotonic() - t0
        to_job, to_tasks = wait_running(j1)
        say(
            f"v1 run answer {answer} after {t_answer:.2f}s; RUNNING after {to_job:.2f}s, "
            f"all tasks after {to_tasks:.2f}s"
        )
        cfg = rest("GET", f"/jobs/{j1}/config")
        show("GET /jobs/{id}/config (execution-config)", cfg)
        show("GET /jobs/{id}/checkpoints/config", rest("GET", f"/jobs/{j1}/checkpoints/config"))
        n, secs = clicks.produce(phase1, bootstrap=BOOTSTRAP, topic=topic, rate=args.rate)
        say(f"produced phase 1: {n} clicks in {secs:.2f}s = {n / secs:.0f}/s (asked {args.rate}/s)")
        exp1 = clicks.emitted(phase1, clicks.GAP_V1_MS)
        waited = wait_rows(t1, exp1)
        say(
            f"v1 phase 1: {len(exp1)} rows equal sessionize() (+{waited:.1f}s after the last click); "
            f"{len(clicks.sessionize(phase1, clicks.GAP_V1_MS)) - len(exp1)} sessions still open in state"
        )
        cps = wait_checkpoint(j1)
        show("GET /jobs/{id}/checkpoints", cps)
        show("GET /jobs/{id}", job(j1))
        show("GET /jobs/overview", rest("GET", "/jobs/overview"))
        show("GET /jobs/{id}/exceptions (healthy)", rest("GET", f"/jobs/{j1}/exceptions"))
        # The source commits the offsets of each completed checkpoint; wait until they reach the end.
        end, t0 = end_offsets(topic), time.monotonic()
        while committed(v1vars["KAPPA_GROUP_ID"], topic) != end and time.monotonic() - t0 < 30:
            time.sleep(0.5)
        say(
            f"committed offsets of {v1vars['KAPPA_GROUP_ID']}: {committed(v1vars['KAPPA_GROUP_ID'], topic)} "
            f"({time.monotonic() - t0:.1f}s after the rows were complete); end offsets {end}"
        )

        # 2. stop with a savepoint; more clicks while it is stopped; restore under a new job id.
        t0 = time.monotonic()
        sp = stop_with_savepoint(j1, sp_dir)
        say(
            f"stop-with-savepoint took {time.monotonic() - t0:.2f}s: {sp}; job {wait_state(j1, {'FINISHED'})}"
        )
        try:
            run_jar(jar_id, render(statements("v1"), v1vars, topic), j1, savepoint=sp)
            say("(a) reusing the FINISHED job's id was ACCEPTED")
        except RestError as e:
            show(
                "(a) POST /jars/{id}/run with the id of a FINISHED job",
                {"status": e.status, "answer": e.body},
            )
        open_spanning = [s for s in clicks.sessionize(phase1, clicks.GAP_V1_MS) if s not in exp1]
        n, secs = clicks.produce(phase2 + tick, bootstrap=BOOTSTRAP, topic=topic, rate=0)
        say(f"produced phase 2 + ticks: {n} clicks in {secs:.2f}s")
        j2 = job_id_for(RUN, "v1", "2")
        jobs.append(j2)
        t0 = time.monotonic()
        run_jar(jar_id, render(statements("v1"), v1vars, topic), j2, savepoint=sp, conf=conf)
        to_job, to_tasks = wait_running(j2)
        say(f"restored as {j2}: RUNNING after {to_job:.2f}s, all tasks after {to_tasks:.2f}s")
        exp = clicks.emitted(timeline + tick, clicks.GAP_V1_MS)
        waited = wait_rows(t1, exp)
        lost = len(clicks.sessionize(phase1, clicks.GAP_V1_MS)) + len(
            clicks.sessionize(phase2, clicks.GAP_V1_MS)
        )
        say(
            f"v1 after restore: {len(exp)} rows equal sessionize(all) (+{waited:.1f}s); "
            f"sum(clicks)={count(t1)[1]} (= {len(timeline)} clicks). "
            f"{len(open_spanning)} sessions were open in the savepoint and continued; "
            f"without the state the table would have {lost} rows"
        )
        cps = wait_checkpoint(j2)
        show("GET /jobs/{id}/checkpoints after restore (latest.restored)", cps)

        # 3. savepoint disposal.
        rid = rest("POST", "/savepoint-disposal", {"savepoint-path": sp})
        show("POST /savepoint-disposal", rid)
        for _ in range(50):
            st = rest("GET", f"/savepoint-disposal/{rid['request-id']}")
            if st["status"]["id"] == "COMPLETED":
                break
            time.sleep(0.2)
        show("GET /savepoint-disposal/{rid}", st)

        # 4. v2 replay from a seeded group (what the operator does), group-offsets.
        seed_group(v2vars["KAPPA_GROUP_ID"], topic, dict.fromkeys(range(clicks.PARTITIONS), 0))
        j3 = job_id_for(RUN, "v2", "1")
        jobs.append(j3)
        run_jar(jar_id, render(statements("v2"), v2vars, topic), j3, conf=conf)
        to_job, to_tasks = wait_running(j3)
        exp2 = clicks.emitted(timeline + tick, clicks.GAP_V2_MS)
        waited = wait_rows(t2, exp2)
        say(
            f"v2 replay (group-offsets, seeded at 0): RUNNING after {to_job:.2f}s; {len(exp2)} rows equal "
            f"sessionize(gap 5 min) after {waited:.1f}s; v1 has {count(t1)[0]} rows: "
            f"ratio {len(exp2) / count(t1)[0]:.3f}; "
            f"clicks v1 {count(t1)[1]} v2 {count(t2)[1]}"
        )
        show("GET /jobs/overview (3 jobs)", rest("GET", "/jobs/overview"))
    finally:
        if not args.keep:
            for j in jobs:
                cancel(j)
            with pg() as conn:
                conn.execute(f"DROP TABLE IF EXISTS {t1}")
                conn.execute(f"DROP TABLE IF EXISTS {t2}")
            delete_kafka(topic, [v1vars["KAPPA_GROUP_ID"], v2vars["KAPPA_GROUP_ID"]])
            shutil.rmtree(sp_dir.removeprefix("file://"), ignore_errors=True)
            say(f"cleaned up run {RUN}")
            forget_jars()


def failure(args: argparse.Namespace) -> None:
    """(b) A job that is accepted and starts, then fails on a record: CAST('/p/17' AS INT) throws."""
    topic, table = f"kappa-demo-clicks-{RUN}", f"demo_{RUN}_sessions_v1"
    jar = Path(os.popen(f"bash {REPO}/testbed/flink.sh runner-jar").read().strip())
    sql = [
        "SET 'pipeline.name' = 'kappa-demo-bad-cast'",
        next(
            s
            for s in render(statements("v1"), variables("v1", table=table, startup="earliest-offset"), topic)
            if s.startswith("CREATE TABLE clicks")
        ),
        "CREATE TABLE sink (user_id STRING, page INT) WITH ('connector' = 'blackhole')",
        # The bug: url is '/p/17', not a number. CAST throws at run time (TRY_CAST would give NULL).
        "INSERT INTO sink SELECT user_id, CAST(url AS INT) FROM clicks",
    ]
    j = job_id_for(RUN, "bad-cast")
    try:
        clicks.ensure_topic(BOOTSTRAP, topic)
        clicks.produce(clicks.events(10), bootstrap=BOOTSTRAP, topic=topic, rate=0)
        jar_id = upload_jar(jar)
        conf = {
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "2",
            "restart-strategy.fixed-delay.delay": "2s",
        }
        show("POST /jars/{id}/run answer", run_jar(jar_id, sql, j, conf=conf))
        seen = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            js = job(j)
            state = js["state"]
            if not seen or seen[-1][1] != state:
                seen.append((round(time.monotonic() - deadline + 90, 1), state))
            if state in ("FAILED", "CANCELED", "FINISHED"):
                break
            time.sleep(0.1)
        say(f"states over time: {seen}")
        show("GET /jobs/{id} (failed)", js)
        show("GET /jobs/{id}/exceptions", rest("GET", f"/jobs/{j}/exceptions?maxExceptions=3"))
        show("GET /jobs/{id}/config", rest("GET", f"/jobs/{j}/config"))
    finally:
        if not args.keep:
            cancel(j)
            delete_kafka(topic, [])
            forget_jars()


def bench(args: argparse.Namespace) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic, t2 = f"kappa-demo-clicks-{RUN}", f"demo_{RUN}_sessions_v2"
    v2vars = variables("v2", table=t2, startup="group-offsets")
    group = v2vars["KAPPA_GROUP_ID"]
    j = job_id_for(RUN, "v2", "bench")
    jar = Path(os.popen(f"bash {REPO}/testbed/flink.sh runner-jar").read().strip())
    try:
        clicks.ensure_topic(BOOTSTRAP, topic)
        create_table(t2)
        t0 = time.monotonic()
        timeline = clicks.events(args.n)
        tick = clicks.ticks(timeline[-1].ts + 3_600_000)
        say(f"generated {len(timeline)} clicks in {time.monotonic() - t0:.1f}s")
        n, secs = clicks.produce(timeline + tick, bootstrap=BOOTSTRAP, topic=topic, rate=0)
        say(f"producer, unthrottled: {n} clicks in {secs:.1f}s = {n / secs:.0f}/s")
        end = end_offsets(topic)
        total = sum(end.values())

        c = Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": f"kappa-demo-plain-{RUN}",
                "enable.auto.commit": False,
                "fetch.max.bytes": 52428800,
            }
        )
        c.assign([TopicPartition(topic, p, 0) for p in end])
        got, t0 = 0, time.monotonic()
        while got < total:
            for m in c.consume(10000, timeout=1):
                if m.error() is None:
                    got += 1
        plain = time.monotonic() - t0
        c.close()
        say(f"plain confluent-kafka consumer: {got} records in {plain:.1f}s = {got / plain:.0f}/s")

        seed_group(group, topic, dict.fromkeys(end, 0))
        jar_id = upload_jar(jar)
        t0 = time.monotonic()
        run_jar(
            jar_id,
            render(statements("v2"), v2vars, topic),
            j,
            conf={"execution.checkpointing.interval": args.checkpoint},
        )
        to_job, to_tasks = wait_running(j)
        say(f"v2 RUNNING after {to_job:.2f}s (tasks {to_tasks:.2f}s)")
        samples = []
        while True:
            done = sum(committed(group, topic).values())
            rows_n = count(t2)[0]
            samples.append((time.monotonic() - t0, done, rows_n))
            say(f"  t={samples[-1][0]:6.1f}s committed={done} rows={rows_n}")
            if done >= total:
                break
            if time.monotonic() - t0 > 900:
                raise TimeoutError(f"replay not done after 900 s: {done} of {total} committed")
            time.sleep(2)
        first = next(s for s in samples if s[1] > 0)
        say(
            f"v2 replay: {total} records committed {samples[-1][0]:.1f}s after submit; "
            f"{(total - first[1]) / (samples[-1][0] - first[0]):.0f}/s between the first and last commit, "
            f"{total / (samples[-1][0] - to_tasks):.0f}/s from tasks RUNNING to the last commit"
        )
        exp = clicks.emitted(timeline + tick, clicks.GAP_V2_MS)
        waited = wait_rows(t2, exp, timeout=300)
        say(f"v2 rows equal sessionize(): {len(exp)} (+{waited:.1f}s)")
        show("GET /jobs/{id}/checkpoints", rest("GET", f"/jobs/{j}/checkpoints"))
    finally:
        if not args.keep:
            cancel(j)
            with pg() as conn:
                conn.execute(f"DROP TABLE IF EXISTS {t2}")
            delete_kafka(topic, [group, f"kappa-demo-plain-{RUN}"])
            forget_jars()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=["demo", "failure", "bench"])
    ap.add_argument("n", nargs="?", type=int, default=2_000_000, help="bench: clicks to replay")
    ap.add_argument("--clicks", type=int, default=30_000, help="demo: clicks per phase")
    ap.add_argument("--rate", type=float, default=1000.0, help="demo: phase 1 production rate")
    ap.add_argument("--checkpoint", default="10s", help="bench: execution.checkpointing.interval")
    ap.add_argument("--keep", action="store_true", help="leave jobs, topic, tables and groups in place")
    ap.add_argument("--log", type=Path, default=LOG)
    args = ap.parse_args()
    globals()["LOG"] = args.log
    {"demo": demo, "failure": failure, "bench": bench}[args.scenario](args)


if __name__ == "__main__":
    main()
