"""Benchmark: how fast a ReplayRun replays the log, against the live rate and against a plain consumer.

    .venv/bin/python benchmarks/replay_speed.py [--backlog 2000000] [--live-rate 1000]

What it does, on the local stack (testbed/*.sh, as `make run` brings it up; a service is started only if it
is not running, and what this script started it stops at the end):
1. starts its own operator (`kappa run --runtime Session -n <namespace>`, under the shipped RBAC, on free
   health and metrics ports), so it reconciles only the benchmark's namespace `kappa-bench-<random>`;
2. produces a backlog of N clicks as fast as it can (examples/demo/producer.py) into its own topic
   (2 partitions), then starts the live clickstream at --live-rate records/s in the background;
3. applies the sessionizer v1 (examples/03, retargeted to that topic and to its own PostgreSQL schema as
   operator/tests/integration/test_flink_session.py does, and to this stack's JDBC URL), and waits until v1
   is active and has read the backlog;
4. measures the ceiling: one plain confluent-kafka consumer reads the topic from the start to the end offsets
   of that moment (it counts records, no decoding), with the live producer and v1 running, as during the
   replay;
5. applies the ReplayRun v2 (examples/04, retargeted likewise) without its throttle, approval Automatic, and
   follows it to the cutover.

The replay rate, two ways:
- end to end: (sum of the target offsets - sum of the start offsets, both from the run's status) / (the
  first time the v2 group's committed offsets are at the target on every partition - the entry into
  Replaying in status.transitions). It includes the job's submission and start-up, and up to one checkpoint
  interval of commit delay;
- steady: the v2 group's committed offsets are sampled every 0.5 s. They move once per checkpoint, so the
  rate is (the committed total at the commit that reaches the target - the one at the first commit after
  the seed) / (the time between those two commits): no start-up, no partial first interval.
The operator's own figure (status.progress.recordsPerSecond, the last one seen while Replaying) is printed
too. The live rate is what the producer achieved: the topic's end offsets, from the live producer's first
record to its stop.

Ports and state come from the testbed's variables (KAPPA_TESTBED_DIR, KAPPA_CACHE, KAPPA_API_PORT,
KAPPA_ETCD_PORT, KAPPA_KAFKA_PORT, KAPPA_KAFKA_CONTROLLER_PORT, KAPPA_PG_PORT, KAPPA_FLINK_PORT,
KAPPA_FLINK_RPC_PORT), so it runs on the default test bed or on a second one; logs go to
$KAPPA_TESTBED_DIR/bench. The session cluster needs 2 free slots (v1 and v2, parallelism 1 each). At the
end the namespace is deleted (the StreamJob's finalizer takes v1's final savepoint and cancels the Flink
jobs; the operator stops only after that), then the topic, the groups and the schema.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import psycopg
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parent.parent
TESTBED = ROOT / "testbed"
sys.path.insert(0, str(ROOT / "examples" / "demo"))
import producer  # noqa: E402  (examples/demo/producer.py)
from testbed_stack import Stack, free_port, say  # noqa: E402  (benchmarks/testbed_stack.py)

CACHE = Path(os.environ.get("KAPPA_CACHE") or Path.home() / ".cache" / "kappa-operator")
STATE = Path(os.environ.get("KAPPA_TESTBED_DIR") or CACHE / "testbed") / "bench"
EXAMPLE_JDBC = "jdbc:postgresql://127.0.0.1:55432/kappa?user=kappa"
CRDS = ("crd/streamjobs.kappa.dev", "crd/replayruns.kappa.dev", "crd/materializedviews.kappa.dev")
ENDED = ("Observing", "Succeeded", "Failed", "Aborted", "RolledBack")

Partition = tuple[str, int]


# -- the stack ---------------------------------------------------------------------------------------------


def runner_jar() -> str:
    done = subprocess.run(
        ["bash", str(TESTBED / "flink.sh"), "runner-jar"], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise SystemExit(f"the SQL runner jar did not build:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


class Operator:
    """`kappa run` as its own process, watching one namespace. Restarted when it dies, as its Deployment would
    restart it; the exit codes are reported."""

    MAX_RESTARTS = 5

    def __init__(self, kubeconfig: str, namespace: str, flink: str, jar: str, interval: float) -> None:
        self.health, self.metrics = free_port(), free_port()
        self.log = STATE / f"operator-{namespace}.log"
        self.exits: list[int] = []
        self.cmd = [
            str(ROOT / ".venv" / "bin" / "kappa"),
            "run",
            "--kubeconfig",
            kubeconfig,
            "-n",
            namespace,
            "--runtime",
            "Session",
            "--flink-rest-url",
            flink,
            "--sql-runner-jar",
            jar,
            "--health-port",
            str(self.health),
            "--metrics-port",
            str(self.metrics),
            "--lag-interval",
            str(interval),
            "--reconcile-interval",
            str(interval),
        ]
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the operator exited with {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"the operator is not healthy after 90 s; see {self.log}")

    def check(self) -> None:
        """Restart the operator if it has died."""
        code = self.proc.poll()
        if code is None:
            return
        self.exits.append(code)
        if len(self.exits) > self.MAX_RESTARTS:
            raise SystemExit(
                f"the operator died {len(self.exits)} times (exit codes {self.exits}); see {self.log}"
            )
        say(f"the operator exited with {code} (see {self.log}); restarting it")
        self.start()
        say(f"  operator PID {self.proc.pid}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        elif self.proc.returncode not in (0, -signal.SIGTERM):
            self.exits.append(self.proc.returncode)


# -- Kubernetes, Kafka, PostgreSQL -------------------------------------------------------------------------


class Kube:
    """kubectl for the few writes; the Python client for the polls (a kubectl process costs ~0.3 s of CPU)."""

    PLURALS: dict[str, str] = {"sj": "streamjobs", "rr": "replayruns"}

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self.kubeconfig, self.ns = kubeconfig, namespace
        self.api = kube_client.CustomObjectsApi(kube_config.new_client_from_config(config_file=kubeconfig))

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> str:
        cmd = ["kubectl", "--kubeconfig", self.kubeconfig, "-n", self.ns, *args]
        done = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args[:3])}: {done.stderr.strip()}")
        return done.stdout

    def apply(self, manifest: dict[str, Any]) -> None:
        self.run("apply", "-f", "-", input=yaml.safe_dump(manifest))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        try:
            found = self.api.get_namespaced_custom_object(
                "kappa.dev", "v1alpha1", self.ns, self.PLURALS[kind], name
            )
        except ApiException as e:
            if e.status == 404:
                return {}
            raise
        return dict(cast(dict[str, Any], found))


class Kafka:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def end_offsets(self) -> dict[Partition, int]:
        specs = {TopicPartition(self.topic, p): OffsetSpec.latest() for p in range(producer.PARTITIONS)}
        futures = self.admin.list_offsets(specs, request_timeout=10)
        return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}

    def committed(self, group: str) -> dict[Partition, int]:
        request = [ConsumerGroupTopicPartitions(group)]
        try:
            result = self.admin.list_consumer_group_offsets(request)[group].result(10)
        except Exception:  # no group yet, or its coordinator is busy: no commits seen
            return {}
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or []
            if tp.offset >= 0 and tp.topic == self.topic
        }

    def plain_read(self, upto: dict[Partition, int]) -> tuple[int, float]:
        """Read the topic from the log start to `upto` with one plain consumer; (records, seconds)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"kappa-bench-plain-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        try:
            left = {p: o for p, o in upto.items() if o > 0}
            started = time.monotonic()
            consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for (t, p) in left])
            n = 0
            while left:
                for msg in consumer.consume(10000, timeout=1.0):
                    if msg.error():
                        continue
                    key, offset = (str(msg.topic()), int(msg.partition() or 0)), int(msg.offset() or 0)
                    if key not in left:
                        continue
                    n += 1
                    if offset + 1 >= left[key]:
                        del left[key]
                        consumer.pause([TopicPartition(*key)])
            return n, time.monotonic() - started
        finally:
            consumer.close()

    def delete(self, groups: list[str]) -> None:
        try:
            self.admin.delete_topics([self.topic])[self.topic].result(30)
        except Exception as e:
            say(f"  topic {self.topic}: {e}")
        for group, future in self.admin.delete_consumer_groups(groups).items() if groups else []:
            try:
                future.result(30)
            except Exception as e:  # a group never committed to is not found
                say(f"  group {group}: {e}")

    def groups(self, prefix: str) -> list[str]:
        listed = self.admin.list_consumer_groups().result(30).valid
        return [g.group_id for g in listed if g.group_id.startswith(prefix)]


def total(offsets: dict[Partition, int]) -> int:
    return sum(offsets.values())


def reached(committed: dict[Partition, int], target: dict[Partition, int]) -> bool:
    return bool(target) and all(committed.get(p, -1) >= o for p, o in target.items())


def offsets_of(status: dict[str, Any], key: str) -> dict[Partition, int]:
    return {(o["topic"], int(o["partition"])): int(o["offset"]) for o in status.get(key) or []}


def transition_at(status: dict[str, Any], phase: str) -> float | None:
    for t in status.get("transitions") or []:
        if t["phase"] == phase:
            return datetime.fromisoformat(t["at"]).timestamp()
    return None


# -- the examples, retargeted ------------------------------------------------------------------------------


def example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "examples" / name).read_text()))


def retarget(statements: list[str], topic: str, schema: str, jdbc: str) -> list[str]:
    """The example's SQL, reading this run's topic, writing this run's schema on this stack's PostgreSQL."""
    return [
        s.replace("'topic' = 'clicks'", f"'topic' = '{topic}'")
        .replace(
            "'table-name' = '${KAPPA_OUTPUT_TABLE}'", f"'table-name' = '{schema}.${{KAPPA_OUTPUT_TABLE}}'"
        )
        .replace(EXAMPLE_JDBC, jdbc)
        for s in statements
    ]


def jdbc_url(pg_uri: str) -> str:
    u = urllib.parse.urlsplit(pg_uri)
    return f"jdbc:postgresql://{u.hostname}:{u.port or 5432}{u.path}?user={u.username}"


# -- the benchmark -----------------------------------------------------------------------------------------


@dataclass
class Figures:
    backlog: int = 0
    backlog_secs: float = 0.0
    live_records: int = 0
    live_secs: float = 0.0
    plain_records: int = 0
    plain_secs: float = 0.0
    replay_records: int = 0
    replay_e2e_secs: float = 0.0
    steady_records: int = 0
    steady_secs: float = 0.0
    operator_rate: float | None = None
    walls: dict[str, float] = field(default_factory=dict)
    phase: str = "-"
    loads: dict[str, tuple[float, float, float]] = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ns = args.namespace or f"kappa-bench-{uuid.uuid4().hex[:6]}"
        self.topic = f"clicks-{self.ns}"
        self.schema = self.ns.replace("-", "_")
        self.stack = Stack()
        self.operator: Operator | None = None
        self.live: subprocess.Popen[bytes] | None = None
        self.live_start: tuple[float, int] | None = None
        self.flink_jobs: set[str] = set()
        self.fig = Figures(backlog=args.backlog)
        self.ckpt = f"{args.checkpoint_interval}s"

    def wait(self, what: str, check: Callable[[], bool], timeout: float, every: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.operator is not None:
                self.operator.check()
            if check():
                return
            time.sleep(every)
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")

    def timed(self, name: str, since: float) -> None:
        self.fig.walls[name] = time.monotonic() - since

    # -- setup ----------------------------------------------------------------------------------------------

    def bring_up(self) -> None:
        t = time.monotonic()
        STATE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["bash", str(TESTBED / "install-prereqs.sh")], check=True, capture_output=True)
        self.admin_kubeconfig = self.stack.up("controlplane.sh", "control plane")
        self.bootstrap = self.stack.up("kafka.sh", "Kafka")
        self.pg = self.stack.up("postgres.sh", "PostgreSQL")
        self.flink = self.stack.up("flink.sh", "Flink session cluster")
        self.jar = runner_jar()
        admin = ["kubectl", "--kubeconfig", self.admin_kubeconfig]
        crds = str(ROOT / "manifests" / "crds")
        subprocess.run(
            [
                *admin,
                "apply",
                "--server-side",
                "--field-manager=kappa-install",
                "--force-conflicts",
                "-f",
                crds,
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*admin, "wait", "--for=condition=Established", "--timeout=60s", *CRDS],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [
                "bash",
                str(TESTBED / "operator-kubeconfig.sh"),
                self.admin_kubeconfig,
                str(STATE / "kubeconfig"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        self.operator_kubeconfig = out.stdout.strip().splitlines()[-1]
        self.kube = Kube(self.admin_kubeconfig, self.ns)
        self.kafka = Kafka(self.bootstrap, self.topic)
        slots = json.loads(urllib.request.urlopen(self.flink + "/overview", timeout=10).read())
        if slots.get("slots-available", 0) < 2:
            say(
                f"warning: {slots.get('slots-available')} free slots on the session cluster; v1 and v2 need 2"
            )
        self.timed("stack up", t)
        say(f"stack: {self.bootstrap}, {self.pg}, {self.flink}; namespace {self.ns}")

    def prepare(self) -> None:
        subprocess.run(
            ["kubectl", "--kubeconfig", self.admin_kubeconfig, "create", "namespace", self.ns],
            check=True,
            capture_output=True,
        )
        self.operator = Operator(
            self.operator_kubeconfig, self.ns, self.flink, self.jar, self.args.operator_interval
        )
        say(f"operator PID {self.operator.proc.pid}, watching {self.ns} (log {self.operator.log})")
        producer.ensure_topic(self.bootstrap, self.topic)
        ddl = (ROOT / "examples" / "demo" / "sessions.sql").read_text()
        with psycopg.connect(self.pg, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.schema}")
            conn.execute(f"SET search_path TO {self.schema}")
            conn.execute(ddl)
        secret = example("01-secret-sessions-db.yaml")
        secret["stringData"]["uri"] = self.pg
        self.kube.apply(secret)
        view = example("02-materializedview-sessions.yaml")
        view["spec"]["backend"]["postgres"]["schema"] = self.schema
        self.kube.apply(view)

    def clicks(self) -> None:
        say(f"producing a backlog of {self.args.backlog:,} clicks as fast as possible into {self.topic}")
        n, secs = producer.produce(
            producer.iter_events(limit=self.args.backlog), bootstrap=self.bootstrap, topic=self.topic, rate=0
        )
        self.fig.backlog, self.fig.backlog_secs = n, secs
        say(f"  {n:,} clicks in {secs:.1f} s ({n / secs:,.0f}/s)")
        log = (STATE / f"producer-{self.ns}.log").open("ab")
        self.live = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "examples" / "demo" / "producer.py"),
                "--bootstrap",
                self.bootstrap,
                "--topic",
                self.topic,
                "--rate",
                str(self.args.live_rate),
                "--skip",
                str(n),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        say(
            f"live clickstream at {self.args.live_rate:,}/s (PID {self.live.pid}); it skips the backlog first"
        )

        def producing() -> bool:
            end = total(self.kafka.end_offsets())
            # The rate counts from the first live record: skipping the backlog's timeline takes a while.
            if end > n:
                self.live_start = (time.monotonic(), end)
            return bool(end > n)

        self.wait("the live producer's first records", producing, timeout=600, every=0.2)

    def stop_live(self) -> None:
        if self.live is None or self.live.poll() is not None:
            return
        stopped = time.monotonic()
        self.live.terminate()
        self.live.wait(timeout=30)
        if self.live_start is not None:
            t0, n0 = self.live_start
            time.sleep(1)  # what was in flight at the stop lands
            self.fig.live_records = total(self.kafka.end_offsets()) - n0
            self.fig.live_secs = stopped - t0

    # -- v1 -------------------------------------------------------------------------------------------------

    def v1(self) -> None:
        t = time.monotonic()
        job = example("03-streamjob-sessionizer.yaml")
        spec = job["spec"]
        spec["source"]["kafka"]["bootstrapServers"] = self.bootstrap
        spec["source"]["topics"] = [self.topic]
        spec["flink"]["sql"] = retarget(spec["flink"]["sql"], self.topic, self.schema, jdbc_url(self.pg))
        # The replay inherits the StreamJob's flinkConfiguration, so this is v2's checkpoint interval too.
        spec["flink"]["flinkConfiguration"]["execution.checkpointing.interval"] = self.ckpt
        spec["upgrade"] |= {"stableFor": "5s"}
        self.kube.apply(job)
        say(f"applied the sessionizer v1 (examples/03; checkpoints every {self.ckpt})")

        def active() -> bool:
            status = self.kube.get("sj", "sessionizer").get("status") or {}
            return bool(status.get("activeVersion") == "v1")

        self.wait("v1 active", active, timeout=900)
        self.timed("v1 applied -> active", t)
        say(f"  v1 active after {time.monotonic() - t:.0f} s; waiting until it has read the backlog")
        group = f"{self.ns}.sessionizer.v1"
        allowed = int(self.args.live_rate * (self.args.checkpoint_interval + 5))

        def caught_up() -> bool:
            committed, end = self.kafka.committed(group), self.kafka.end_offsets()
            return total(committed) >= self.fig.backlog and total(end) - total(committed) <= allowed

        self.wait("v1 to read the backlog", caught_up, timeout=3600)
        self.timed("v1 applied -> caught up", t)
        say(f"  v1 caught up after {time.monotonic() - t:.0f} s (lag <= {allowed:,} records)")

    # -- the ceiling ----------------------------------------------------------------------------------------

    def plain(self) -> None:
        upto = self.kafka.end_offsets()
        n, secs = self.kafka.plain_read(upto)
        self.fig.plain_records, self.fig.plain_secs = n, secs
        say(f"plain consumer: {n:,} records in {secs:.1f} s ({n / secs:,.0f}/s)")

    # -- the replay -----------------------------------------------------------------------------------------

    def replay_run(self) -> dict[str, Any]:
        run = example("04-replayrun-sessionizer-v2.yaml")
        spec = run["spec"]
        spec["overrides"]["sql"] = retarget(
            spec["overrides"]["sql"], self.topic, self.schema, jdbc_url(self.pg)
        )
        spec.pop("throttle", None)
        spec["approval"] = "Automatic"
        # Committed offsets move once per checkpoint, and the operator polls lag every operator interval: the
        # lag it sees with the live producer running is up to rate x (checkpoint + poll interval) records.
        allowed = int(self.args.live_rate * (self.args.checkpoint_interval + self.args.operator_interval) * 2)
        spec["catchUp"] = {"maxLagRecords": allowed, "stableFor": "10s"}
        spec["validation"]["sql"] = [  # the example's checks, on this run's schema
            {**c, "query": c["query"].replace("FROM sessions_v1", f"FROM {self.schema}.sessions_v1")}
            for c in spec["validation"]["sql"]
        ]
        return run

    def replay(self) -> None:
        self.fig.loads["before the replay"] = os.getloadavg()
        self.kube.apply(self.replay_run())
        say("applied the ReplayRun v2 (examples/04, no throttle, approval Automatic)")
        t = time.monotonic()
        group = f"{self.ns}.sessionizer.v2"
        samples: list[tuple[float, int]] = []  # (time, committed total) at each change
        start: dict[Partition, int] = {}
        target: dict[Partition, int] = {}
        hit: float | None = None
        status: dict[str, Any] = {}
        next_status = 0.0
        last_line = ""
        frozen = False
        while time.monotonic() - t < self.args.timeout:
            if self.operator is not None:
                self.operator.check()
            now = time.time()
            if hit is None:
                committed = self.kafka.committed(group)
                if committed and (not samples or total(committed) != samples[-1][1]):
                    samples.append((now, total(committed)))
                if reached(committed, target):
                    hit = now
                    self.fig.loads["at the target"] = os.getloadavg()
            if time.monotonic() >= next_status or hit is not None:
                next_status = time.monotonic() + 2
                status = self.kube.get("rr", "sessionizer-v2").get("status") or {}
                start, target = offsets_of(status, "startOffsets"), offsets_of(status, "targetOffsets")
                phase = status.get("phase") or "-"
                progress = status.get("progress") or {}
                # The operator's figure when it first sees the target reached (it keeps averaging since the
                # replay began afterwards, at the live rate, so later values fall).
                rps, consumed = progress.get("recordsPerSecond"), progress.get("consumed") or 0
                if rps is not None and not frozen:
                    self.fig.operator_rate = float(rps)
                    frozen = consumed >= (progress.get("target") or consumed + 1)
                line = (
                    f"  {phase:<16} {progress.get('percent', '-'):>5} {progress.get('consumed', 0) or 0:>10,}"
                    f"/{progress.get('target', 0) or 0:,}  {progress.get('recordsPerSecond', '-')} rec/s"
                )
                if line != last_line:
                    say(line)
                    last_line = line
                if phase in ENDED and hit is not None:
                    break
                if phase in ENDED:  # ended before the offsets were seen at the target (e.g. failed)
                    break
            time.sleep(0.5)
        self.timed("ReplayRun to cutover", t)
        self.fig.phase = status.get("phase") or "-"
        if self.fig.phase in ("Failed", "Aborted", "RolledBack"):
            say(f"the ReplayRun ended {self.fig.phase}: {status.get('reason')}")
            for check in status.get("validation") or []:
                say(f"  validation {check['name']}: passed={check['passed']} {check.get('message', '')}")
        entered = transition_at(status, "Replaying")
        caught = transition_at(status, "CatchingUp")
        seeded = total(start)
        if entered and caught:
            self.fig.walls["Replaying -> CatchingUp (status)"] = caught - entered
        if hit is None or not entered:
            say("the v2 group never reached the target offsets: no replay rate")
            return
        self.fig.replay_records = total(target) - seeded
        self.fig.replay_e2e_secs = hit - entered
        moved = [(ts, c) for ts, c in samples if c > seeded]
        if len(moved) >= 2:
            (t1, c1), (t2, c2) = moved[0], moved[-1]
            self.fig.steady_records, self.fig.steady_secs = c2 - c1, t2 - t1
        say(
            f"  commits of {group}: "
            + ", ".join(f"{c - seeded:,} @ {ts - entered:.1f}s" for ts, c in samples if c > seeded)
        )

    # -- report and cleanup ---------------------------------------------------------------------------------

    def report(self) -> None:
        f = self.fig

        def rate(n: int, s: float) -> float:
            return n / s if s > 0 else 0.0

        live = rate(f.live_records, f.live_secs)
        plain = rate(f.plain_records, f.plain_secs)
        e2e = rate(f.replay_records, f.replay_e2e_secs)
        steady = rate(f.steady_records, f.steady_secs)

        def ratio(a: float, b: float) -> str:
            return "-" if not (a and b) else f"{a / b:,.1f}" if a >= 10 * b else f"{a / b:.2f}"

        rows = [
            ("backlog", f"{f.backlog:,} records, produced at {rate(f.backlog, f.backlog_secs):,.0f}/s"),
            ("live rate (achieved)", f"{live:,.0f} records/s ({f.live_records:,} in {f.live_secs:.0f} s)"),
            (
                "replay rate, end to end",
                f"{e2e:,.0f} records/s ({f.replay_records:,} records, Replaying -> committed at target "
                f"in {f.replay_e2e_secs:.1f} s)",
            ),
            (
                "replay rate, steady",
                f"{steady:,.0f} records/s ({f.steady_records:,} records between the first commit and the one "
                f"at the target, {f.steady_secs:.1f} s apart)"
                if steady
                else "- (one commit only: the replay took under a checkpoint interval; use a larger backlog)",
            ),
            (
                "replay rate, operator",
                f"{f.operator_rate or 0:,.0f} records/s (status.progress.recordsPerSecond at the target)",
            ),
            ("replay / live", f"{ratio(e2e, live)} end to end, {ratio(steady, live)} steady"),
            ("plain consumer rate", f"{plain:,.0f} records/s ({f.plain_records:,} in {f.plain_secs:.1f} s)"),
            ("replay / plain consumer", f"{ratio(e2e, plain)} end to end, {ratio(steady, plain)} steady"),
            ("ReplayRun ended in", f.phase),
        ]
        rows += [(f"wall: {k}", f"{v:.1f} s") for k, v in f.walls.items()]
        rows += [(f"load average {k}", " ".join(f"{x:.2f}" for x in v)) for k, v in f.loads.items()]
        rows.append(("cores", str(os.cpu_count())))
        exits = self.operator.exits if self.operator else []
        rows.append(("operator deaths", f"{len(exits)} (exit codes {exits})" if exits else "0"))
        width = max(len(k) for k, _ in rows)
        print(f"\n$ {' '.join([sys.executable, *sys.argv])}")
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
        print(flush=True)

    def record_flink_jobs(self) -> None:
        """The Flink job ids the operator recorded: a job it failed to cancel can be found afterwards."""
        out = self.kube.run("get", "configmap", "-l", "kappa.dev/runtime=session", "-o", "json", check=False)
        for cm in json.loads(out or "{}").get("items", []):
            record = json.loads((cm.get("data") or {}).get("record") or "{}")
            if record.get("job_id"):
                self.flink_jobs.add(record["job_id"])

    def cleanup(self) -> None:
        t = time.monotonic()
        self.stop_live()
        if hasattr(self, "kube"):
            try:
                if self.operator is not None:
                    self.operator.check()  # the namespace's finalizers need it
            except SystemExit as e:
                say(f"warning: {e}")
            self.record_flink_jobs()
            say(f"deleting namespace {self.ns} (the StreamJob's finalizer takes v1's final savepoint)")
            self.kube.run("delete", "namespace", self.ns, "--timeout=600s", check=False, timeout=660)
            gone = subprocess.run(
                ["kubectl", "--kubeconfig", self.admin_kubeconfig, "get", "namespace", self.ns],
                capture_output=True,
            )
            if gone.returncode == 0:
                say(f"warning: namespace {self.ns} is still there; see {self.operator and self.operator.log}")
        if self.operator is not None:
            self.operator.stop()
        for job in sorted(self.flink_jobs):
            try:
                state = json.loads(urllib.request.urlopen(f"{self.flink}/jobs/{job}", timeout=10).read())[
                    "state"
                ]
            except (urllib.error.URLError, KeyError, ValueError):
                continue
            if state in ("RUNNING", "CREATED", "RESTARTING", "INITIALIZING"):
                say(f"warning: Flink job {job} is still {state} after the namespace went; cancelling it")
                request = urllib.request.Request(f"{self.flink}/jobs/{job}?mode=cancel", method="PATCH")
                urllib.request.urlopen(request, timeout=10).close()
        if hasattr(self, "kafka"):
            self.kafka.delete(self.kafka.groups(f"{self.ns}."))
        if hasattr(self, "pg"):
            with psycopg.connect(self.pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.timed("cleanup", t)
        if hasattr(self, "kafka"):
            del self.kafka  # its AdminClient would log the broker going away
        if not self.args.keep_stack:
            self.stack.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backlog", type=int, default=2_000_000, help="clicks produced before the live stream")
    ap.add_argument("--live-rate", type=int, default=1000, help="live clicks/s during the replay (>= 1000)")
    ap.add_argument("--checkpoint-interval", type=int, default=5, help="seconds; v1 and v2 (example: 10)")
    ap.add_argument("--operator-interval", type=float, default=2.0, help="operator lag/reconcile interval, s")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds from the ReplayRun to its cutover")
    ap.add_argument("--namespace", help="default: kappa-bench-<random>; must not exist")
    ap.add_argument("--keep-stack", action="store_true", help="leave services this run started running")
    args = ap.parse_args()
    bench = Bench(args)
    started = time.monotonic()
    bench.fig.loads["at the start"] = os.getloadavg()
    try:
        bench.bring_up()
        bench.prepare()
        bench.clicks()
        bench.v1()
        bench.plain()
        bench.replay()
        bench.stop_live()
    finally:
        bench.fig.walls["total (before cleanup)"] = time.monotonic() - started
        try:
            bench.cleanup()
        finally:
            bench.report()


if __name__ == "__main__":
    main()
