"""Plays the Kappa story on the local stack that `make run` brought up (testbed/run-local.sh), as a person
would with kubectl, printing what happens:

1. a backlog of clicks, then a live clickstream at 1,000 clicks/s (examples/demo/producer.py, in the
   background);
2. the sessionizer v1 (examples/03), with its deliberate bug (a 1-minute session gap), on the Flink session
   cluster, serving the `sessions` view (examples/02) in PostgreSQL;
3. the ReplayRun of the fix v2 (examples/04): preflight, replay from the start of the log with progress,
   catch-up, validation, an approval (`kappa approve`), the atomic cutover;
4. the corrected numbers, read through the view, against v1's.

A second `make run` starts the story again: it deletes what the last one made in its own namespace, topic and
tables first. Everything keeps running afterwards; `make down` stops it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import producer  # noqa: E402  (examples/demo/producer.py)

TOPIC = "clicks"
BACKLOG = 300_000
LIVE_RATE = 1000


class Story:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ns = args.namespace
        self.state = Path(args.state)
        self.started = time.monotonic()

    # -- small helpers -------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        cmd = ["kubectl", "--kubeconfig", self.args.kubeconfig, "-n", self.ns, *args]
        done = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=180)
        if check and done.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def get(self, kind: str, name: str) -> dict[str, Any]:
        out = self.kubectl("get", kind, name, "-o", "json", check=False)
        return json.loads(out) if out else {}

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.args.postgres, autocommit=True) as conn:
            cursor = conn.execute(query)
            return list(cursor.fetchall()) if cursor.description else []

    def end_offsets(self) -> int:
        admin = AdminClient({"bootstrap.servers": self.args.bootstrap})
        meta = admin.list_topics(TOPIC, timeout=10).topics.get(TOPIC)
        if meta is None or meta.error is not None:
            return 0
        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": self.args.bootstrap, "group.id": "kappa-demo-probe"})
        try:
            total = 0
            for p in meta.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
                total += high
            return total
        finally:
            consumer.close()

    # -- the story ----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """The previous story's namespace, topic, groups, tables and view go, so this one starts clean."""
        existing = subprocess.run(
            ["kubectl", "--kubeconfig", self.args.kubeconfig, "get", "namespace", self.ns],
            capture_output=True,
            text=True,
        )
        if existing.returncode == 0:
            self.say(f"removing the last story's namespace {self.ns} (its StreamJob takes a final savepoint)")
            gone = subprocess.run(
                [
                    "kubectl",
                    "--kubeconfig",
                    self.args.kubeconfig,
                    "delete",
                    "namespace",
                    self.ns,
                    # A StreamJob whose job cannot take its final savepoint (a job restarting on a topic a
                    # wiped Kafka lost) is let go after spec.upgrade.savepointTimeout, 10 minutes by default.
                    "--timeout=660s",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if gone.returncode != 0:
                raise SystemExit(
                    f"namespace {self.ns} is still being deleted: {gone.stderr.strip()}; see "
                    f"`kubectl get namespace {self.ns} -o yaml` and the operator log, then `make run` again"
                )
        stop = self.state / "producer.pid"
        if stop.exists():
            subprocess.run(["kill", stop.read_text().strip()], capture_output=True, check=False)
            stop.unlink()
        admin = AdminClient({"bootstrap.servers": self.args.bootstrap})
        if TOPIC in admin.list_topics(timeout=10).topics:
            admin.delete_topics([TOPIC])[TOPIC].result(30)
            time.sleep(2)  # the broker finishes deleting before the topic can be made again
        groups = [
            g.group_id
            for g in admin.list_consumer_groups().result(30).valid
            if g.group_id.startswith(f"{self.ns}.")
        ]
        for future in admin.delete_consumer_groups(groups).values() if groups else []:
            future.result(30)
        self.sql("DROP VIEW IF EXISTS public.sessions")
        for (table,) in self.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'sessions_v%'"
        ):
            self.sql(f"DROP TABLE public.{table}")

    def clicks(self) -> None:
        producer.ensure_topic(self.args.bootstrap, TOPIC)
        self.say(f"producing a backlog of {BACKLOG:,} clicks (the history a replay will recompute)")
        n, secs = producer.produce(
            producer.iter_events(limit=BACKLOG), bootstrap=self.args.bootstrap, topic=TOPIC, rate=0
        )
        self.say(f"  {n:,} clicks in {secs:.1f} s")
        log = (self.state / "producer.log").open("ab")
        live = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "producer.py"),
                "--bootstrap",
                self.args.bootstrap,
                "--topic",
                TOPIC,
                "--rate",
                str(LIVE_RATE),
                "--skip",
                str(BACKLOG),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        (self.state / "producer.pid").write_text(str(live.pid))
        self.say(f"live clickstream: {LIVE_RATE:,} clicks/s into topic {TOPIC} (PID {live.pid})")

    def v1(self) -> None:
        self.kubectl("create", "namespace", self.ns, check=False)
        ddl = (HERE / "sessions.sql").read_text()
        self.sql(ddl)
        for example in (
            "01-secret-sessions-db.yaml",
            "02-materializedview-sessions.yaml",
            "03-streamjob-sessionizer.yaml",
        ):
            self.kubectl("apply", "-f", str(ROOT / "examples" / example))
        self.say(
            "applied examples/01-03: the Secret, the `sessions` view, the sessionizer v1 (bug: 1-minute gap)"
        )
        last = ""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            sj = self.get("sj", "sessionizer").get("status") or {}
            ready = next((c for c in sj.get("conditions") or [] if c["type"] == "Ready"), {})
            deps = {d["version"]: d for d in sj.get("deployments") or []}
            line = (
                f"sessionizer: phase {sj.get('phase')}, v1 job {deps.get('v1', {}).get('jobState')}, "
                f"lag {sj.get('lag')}, Ready={ready.get('status')} {ready.get('reason', '')}"
            )
            if line != last:
                self.say(line)
                last = line
            if sj.get("activeVersion") == "v1" and self.view_rows() > 0:
                break
            time.sleep(2)
        else:
            raise SystemExit(
                "v1 did not come up in 10 minutes; see the operator log and `kubectl describe sj`"
            )
        self.say(f"v1 serves `sessions`: {self.summary()}")

    def view_rows(self) -> int:
        try:
            return int(self.sql("SELECT count(*) FROM public.sessions")[0][0])
        except psycopg.Error:
            return 0

    def summary(self) -> str:
        rows, clicks, users = self.sql(
            "SELECT count(*), coalesce(sum(clicks), 0), count(DISTINCT user_id) FROM public.sessions"
        )[0]
        table = self.sql(
            "SELECT table_name FROM information_schema.view_table_usage WHERE view_name = 'sessions'"
        )
        per = clicks / rows if rows else 0
        reads = table[0][0] if table else "?"
        return f"{rows:,} sessions of {users} users, {per:.1f} clicks per session (reads {reads})"

    def replay(self) -> None:
        self.kubectl("apply", "-f", str(ROOT / "examples" / "04-replayrun-sessionizer-v2.yaml"))
        self.say(
            "applied examples/04: ReplayRun sessionizer-v2 replays the log through the fix (5-minute gap)"
        )
        last = ""
        approved = False
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            rr = self.get("rr", "sessionizer-v2").get("status") or {}
            phase = rr.get("phase") or "-"  # no status yet: the operator has not looked at the run
            progress = rr.get("progress") or {}
            total = (rr.get("lag") or {}).get("total")
            lag = f"{total:,}" if isinstance(total, int) else "-"
            if phase == "CatchingUp":  # the backlog is replayed: now it follows the live head
                line = (
                    f"replay: {phase:<16} lag {lag} records against the live head "
                    f"({(rr.get('lag') or {}).get('evaluation') or '-'}), caught up since "
                    f"{rr.get('caughtUpSince') or '-'}"
                )
            else:
                line = (
                    f"replay: {phase:<16} {progress.get('percent', '-'):>6} "
                    f"{progress.get('consumed', 0):>9,}/{progress.get('target', 0):,} records, "
                    f"{progress.get('recordsPerSecond', '-')} rec/s, "
                    f"ETA {progress.get('eta', '-')}, lag {lag}"
                )
            if line != last:
                self.say(line)
                last = line
            if phase == "AwaitingApproval" and not approved:
                for check in rr.get("validation") or []:
                    mark = "passed" if check.get("passed") else "FAILED"
                    self.say(f"  validation {check['name']}: {mark}: {check.get('message', '')}")
                self.say(
                    "  approving, as an on-call engineer would: kappa approve sessionizer-v2 -n " + self.ns
                )
                subprocess.run(
                    [
                        str(ROOT / ".venv" / "bin" / "kappa"),
                        "approve",
                        "sessionizer-v2",
                        "-n",
                        self.ns,
                        "--kubeconfig",
                        self.args.kubeconfig,
                    ],
                    check=True,
                    capture_output=True,
                )
                approved = True
            if phase in ("Observing", "Succeeded"):
                return
            if phase in ("Failed", "Aborted", "RolledBack"):
                raise SystemExit(
                    f"the replay ended {phase}: {rr.get('reason')}; "
                    f"see `kubectl -n {self.ns} describe rr sessionizer-v2`"
                )
            time.sleep(2)
        raise SystemExit("the replay did not finish in 30 minutes")

    def finish(self, before: str) -> None:
        time.sleep(3)
        self.say(f"before the cutover (v1): {before}")
        self.say(f"after the cutover  (v2): {self.summary()}")
        user = self.sql("SELECT user_id FROM public.sessions ORDER BY user_id LIMIT 1")[0][0]
        rows = self.sql(
            "SELECT session_start, session_end, clicks FROM public.sessions "
            f"WHERE user_id = '{user}' ORDER BY session_start LIMIT 3"
        )
        for start, end, clicks in rows:
            self.say(f"  {user}: {start:%Y-%m-%d %H:%M:%S} - {end:%H:%M:%S}, {clicks} clicks")
        print(
            f"""
The story is done: readers of `sessions` got v1's buggy sessions, and now get v2's, recomputed from the log.
v1 waits, suspended at its final savepoint, for the rollback window (30m). Everything keeps running.

Try next:
  export KUBECONFIG={self.args.kubeconfig}
  kubectl -n {self.ns} get sj,rr,mv                 # versions, phase, progress, lag
  kubectl -n {self.ns} describe rr sessionizer-v2   # conditions, validation, the cutover record, events
  kubectl -n {self.ns} get cm -l kappa.dev/runtime=session   # the session runtime's job records
  psql {self.args.postgres} -c 'SELECT * FROM sessions LIMIT 5'
  .venv/bin/kappa rollback rr sessionizer-v2 -n {self.ns}   # back to v1, resumed from its savepoint
  curl -s {self.args.metrics} | grep '^kappa_'       # the operator's metrics
  {self.args.flink}                          # Flink's web UI: the jobs of both versions
  make down                                         # stop everything make run started
Logs: {self.state}/operator.log, {self.state}/producer.log
""",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--namespace", default="kappa-demo")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--postgres", required=True)
    ap.add_argument("--flink", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--metrics", default="http://127.0.0.1:19090/metrics")
    story = Story(ap.parse_args())
    story.reset()
    story.clicks()
    story.v1()
    before = story.summary()
    story.replay()
    story.finish(before)


if __name__ == "__main__":
    main()
