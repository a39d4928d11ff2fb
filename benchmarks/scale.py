"""Benchmark: the operator with 100, 300 or 1,000 StreamJobs, next to a plain client in the same run.

    .venv/bin/python benchmarks/scale.py --jobs 1000 [--source DIR]

What it does, on the test bed the KAPPA_* variables select (testbed/controlplane.sh and testbed/kafka.sh are
started only if they are not running, and what this script started it stops at the end):
1. installs the CRDs: the kappa ones of the source tree under test, FKO's and Strimzi's as the integration
   tests do; starts the FKO double (tests/doubles/fko.py) in this process, acting in the benchmark's
   namespace only; starts its own operator from `--source DIR` (`python -m kappa.cli.main run` with
   PYTHONPATH=DIR/operator:DIR, so an older commit extracted with `git archive <commit> | tar -x -C DIR` can
   be measured), under the shipped RBAC, cluster-wide as the shipped Deployment runs it. (With `-n`, Kopf
   first lists namespaces, which the shipped RBAC does not allow; it retries for about 55 s before it falls
   back, and that start-up would be measured as create latency.) The control plane is the test bed's own, so
   the operator sees only the benchmark's objects;
2. the plain client: creates N FlinkDeployments directly in `kappa-scale-plain-<random>` from --clients
   threads, each with its own client; that namespace is then deleted (and waited for) before the operator's
   part, so its objects weigh on nothing after;
2b. the floor: benchmarks/floor_controller.py, a process of its own, answers each of N request objects with
   one create, and nothing else: the least any controller costs on this machine (--no-floor skips it);
3. the operator: creates N StreamJobs in its namespace from as many threads. Each reads the test Kafka with
   `bootstrapServers` (one small topic, 1 partition, 5 records written in one transaction, so its end offset
   is 6 with the commit marker; each v1 group is seeded at offset 5, so the lag poll sees `end - committed`
   = 1, runs its transaction-marker recount, as for a healthy job at rest reading a transactional topic, and
   finds no record left: lag 0, verdict OK);
   `upgrade.stableFor` is 0s, so Ready follows the first look at a healthy version;
4. at rest: --settle seconds after the last Ready (or the Ready timeout), then --rest seconds of samples;
5. restart: SIGTERM the operator (the time it takes to exit is printed), bump every StreamJob to version v2
   while it is down, start it again and time until every job's v1 FlinkDeployment is suspended and its v2
   FlinkDeployment exists (from v1's savepoint, as an upgrade goes). A change of spec at the same version is
   not rolled out to the running FlinkDeployment (the upgrade machine applies a version only when it
   deploys, suspends or resumes it), so the version is the change that reaches every job. FlinkDeployments
   recreated (a v1 whose uid changed or that went away) are counted: there should be none.

All times are wall-clock times at which the benchmark's own watches (tests/doubles/kube_watch.py, one
list-then-watch per kind) delivered an object, against the time just before the create call:
- create → FlinkDeployment exists: the operator's (StreamJob create → its v1 FlinkDeployment seen) next to
  the plain client's (FlinkDeployment create → seen), both through the same watch;
- Ready after RUNNING: the StreamJob's Ready=True (for its generation) seen, minus its FlinkDeployment's
  jobStatus.state RUNNING seen. The Checkpointed gate needs a checkpoint that FKO triggered after the start,
  which FKO does every `kubernetes.operator.periodic.checkpoint.interval` (the operator sets a fifth of
  readinessTimeout: 60 s by default), so Ready after *healthy* is printed too: healthy is the first status
  with RUNNING and checkpointInfo.lastCheckpoint newer than jobStatus.startTime, when every gate passes;
- at rest: the operator's RSS (VmRSS, summed over its process group) and CPU (utime+stime over the window,
  in % of one core), the kube-apiserver's and etcd's CPU, this process's CPU (the FKO double and the
  watches), and API requests per second from the kube-apiserver's /metrics (`apiserver_request_total`, all
  clients, nothing subtracted). That counter has no client label; the operator's share is
  `apiserver_flowcontrol_dispatched_requests_total` of the flow schema `service-accounts` (the operator runs
  under its ServiceAccount; the FKO double, the benchmark's watches and the controller-manager run as
  system:masters, flow schema `exempt`);
- API requests (the same counter, all clients) from the first create to the last Ready, and from the restart
  to the last job up to date: in all, per job and per second, and by verb and resource.

`KAPPA_ETCD_VERSION=3.6.16` runs the control plane on an etcd built from the Go module proxy instead of
Debian's 3.4 (testbed/controlplane.sh; `down` it first).

Ports and state come from the testbed's variables, as for the other benchmarks; the operator's log goes to
$KAPPA_TESTBED_DIR/bench. At the end (also on failure) the operator is stopped, the finalizers of what is
left in the two namespaces are removed, the namespaces are deleted, and the topic and groups too.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
TESTBED = ROOT / "testbed"
sys.path.insert(0, str(ROOT / "operator"))  # the test bed's doubles: tests/doubles
from floor_controller import REQUEST  # noqa: E402  (benchmarks/floor_controller.py)
from testbed_stack import Stack, free_port, say  # noqa: E402  (benchmarks/testbed_stack.py)

from tests.doubles.fixtures import install_upstream_crds  # noqa: E402
from tests.doubles.fko import FLINK_DEPLOYMENTS, FakeFlinkOperator  # noqa: E402
from tests.doubles.kube_watch import Obj, Resource, ResourceWatcher, api_client  # noqa: E402

CACHE = Path(os.environ.get("KAPPA_CACHE") or Path.home() / ".cache" / "kappa-operator")
STATE = Path(os.environ.get("KAPPA_TESTBED_DIR") or CACHE / "testbed")
STREAMJOBS = Resource("kappa.dev", "v1alpha1", "streamjobs", "StreamJob")
KAPPA_CRDS = ("streamjobs", "replayruns", "materializedviews")
IMAGE = "kappa-dev/flink-sql-runner:1.20"
SQL = "INSERT INTO `${KAPPA_OUTPUT_TOPIC}` SELECT * FROM clicks /* ${KAPPA_GROUP_ID} */"
RECORDS = 5  # records in the source topic, in one transaction: its end offset is RECORDS + 1 (the marker)
SEEDED_AT = RECORDS  # each v1 group's committed offset: past every record, short of the marker (lag 0)
CLK_TCK = os.sysconf("SC_CLK_TCK")

Key = tuple[str, str]

MEMORY_PROBE = """
import collections, gc, os, re, signal, sys, tracemalloc
out = sys.argv.pop(1)
def maps(f):
    # /proc/self/smaps by kind: glibc's main heap, anonymous maps (pymalloc's arenas, glibc's thread arenas,
    # thread stacks: the kernel merges neighbours, so their sizes tell nothing), files
    rss, name = collections.Counter(), ""
    for line in open("/proc/self/smaps"):
        head = re.match(r"[0-9a-f]+-[0-9a-f]+ \\S+ \\S+ \\S+ \\S+\\s*(.*)", line)
        if head:
            name = "files" if head[1].startswith("/") else head[1] or "anonymous"
        elif line.startswith("Rss:"):
            rss[name] += int(line.split()[1])
    f.write("-- smaps RSS: " + ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in rss.most_common()) + "\\n")
def malloc(f):
    # glibc's arenas (all of them), then what malloc_trim(0) gives back to the system: the memory free
    # in the heap that the allocator kept
    import ctypes
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in names]
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    info = libc.mallinfo2()
    f.write(f"-- glibc malloc: arenas {info.arena / 2**20:.1f} MiB, in use {info.uordblks / 2**20:.1f} MiB, "
            f"free {info.fordblks / 2**20:.1f} MiB, mmapped {info.hblkhd / 2**20:.1f} MiB\\n")
    lines = lambda: open("/proc/self/status").read().splitlines()
    status = lambda key: next(int(l.split()[1]) for l in lines() if l.startswith(key)) / 1024
    rss = lambda: status("VmRSS:")
    f.write(f"-- VmHWM (the most the process held at once) {status('VmHWM:'):.1f} MiB\\n")
    before = rss()
    libc.malloc_trim(0)
    f.write(f"-- malloc_trim(0): VmRSS {before:.1f} -> {rss():.1f} MiB\\n")
def dump(*_):
    with open(out, "a") as f:
        maps(f)
        kinds = collections.Counter(type(o).__name__ for o in gc.get_objects())
        top = ", ".join(f"{k} {v}" for k, v in kinds.most_common(25))
        f.write(f"-- gc objects {sum(kinds.values())}: {top}\\n")
        f.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        malloc(f)
        if not tracemalloc.is_tracing():
            return
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics("lineno")
        f.write(f"-- traced {sum(s.size for s in stats) / 2**20:.1f} MiB in {len(stats)} lines\\n")
        for stat in stats[:40]:
            f.write(f"{stat.size / 2**20:8.1f} MiB {stat.count:9d} {stat.traceback}\\n")
        for stat in snapshot.statistics("filename")[:25]:
            f.write(f"{stat.size / 2**20:8.1f} MiB {stat.count:9d} {stat.traceback} (file)\\n")
        if tracemalloc.get_traceback_limit() > 1:  # --tracemalloc N: who allocated it, N frames deep
            for stat in snapshot.statistics("traceback")[:25]:
                f.write(f"-- {stat.size / 2**20:.1f} MiB in {stat.count} blocks, allocated at:\\n")
                f.write("\\n".join(stat.traceback.format(most_recent_first=True)) + "\\n")
signal.signal(signal.SIGUSR2, dump)
from kappa.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def pct(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    """p50 / p99 / max of `values`, or a dash."""
    if not values:
        return "-"
    p50, p99 = pct(values, 0.5) or 0.0, pct(values, 0.99) or 0.0
    return (
        f"p50 {p50 * scale:.3f} {unit}, p99 {p99 * scale:.3f} {unit}, max {max(values) * scale:.3f} {unit}"
        f" (n={len(values)})"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- processes ----------------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat from its third field (state) on: the command name may hold spaces and parentheses."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def group_pids(pgid: int) -> list[int]:
    """The processes of a process group: the operator and any child it started."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat(int(entry.name))[2]) == pgid:
                pids.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return pids


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime, in seconds, summed over `pids` (the ones still alive)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_mib(pids: Iterable[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def pid_of(name: str) -> int | None:
    """A test-bed service's PID, from the pid file its script writes."""
    try:
        return int((STATE / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


# -- the stack ----------------------------------------------------------------------------------------------


class Operator:
    """`kappa run` from the source tree under test, as its own process (and process group)."""

    def __init__(self, source: Path, kubeconfig: Path, log: Path, args: argparse.Namespace):
        self.health, self.metrics = free_port(), free_port()
        self.log = log
        self.source = source
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(source / "operator"), str(source)]),
        }
        # --tracemalloc: the operator traces its allocations, and SIGUSR2 writes their top lines to its log's
        # directory (`memory`), to see where the RSS at rest goes. Tracing slows it: figures taken so are
        # for memory only.
        trace = ["-X", f"tracemalloc={args.tracemalloc}"] if args.tracemalloc else []
        launch = [*trace, "-c", MEMORY_PROBE, str(log.with_suffix(".memory"))]
        self.cmd = [
            sys.executable,
            *(launch if args.tracemalloc or args.memstats else ["-m", "kappa.cli.main"]),
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--health-port",
            str(self.health),
            "--metrics-port",
            str(self.metrics),
            "--reconcile-interval",
            str(args.reconcile_interval),
            "--lag-interval",
            str(args.lag_interval),
            *(["--verbose"] if args.verbose else []),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def package(self) -> str:
        """Where `kappa` is imported from with this environment: it must be the source tree under test."""
        done = subprocess.run(
            [sys.executable, "-c", "import kappa; print(kappa.__file__)"],
            env=self.env,
            cwd=self.source,
            capture_output=True,
            text=True,
            check=True,
        )
        found = done.stdout.strip()
        if not Path(found).resolve().is_relative_to(self.source.resolve()):
            raise SystemExit(f"kappa is imported from {found}, not from {self.source}")
        return found

    def start(self, timeout: float = 300) -> float:
        """Start it; the seconds until /healthz answers."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.source,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"the operator exited with {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/healthz", timeout=1):
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"the operator is not healthy after {timeout:.0f} s; see {self.log}")

    def lag_polls(self) -> Counter[str]:
        """The operator's own lag-poll histogram (`kappa_lag_poll_duration_seconds`) and error counter, from
        its /metrics: `sum`, `count`, `errors`, and each bucket's count under its bound (`le=...`)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        taken: Counter[str] = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "kappa_lag_poll_duration_seconds_sum":
                    taken["sum"] = sample.value
                elif sample.name == "kappa_lag_poll_duration_seconds_count":
                    taken["count"] = sample.value
                elif sample.name == "kappa_lag_poll_duration_seconds_bucket":
                    taken[f"le={sample.labels['le']}"] = sample.value
                elif sample.name == "kappa_lag_poll_errors_total":
                    taken["errors"] = sample.value
        return taken

    def stop(self, timeout: float) -> tuple[float, bool]:
        """SIGTERM to its process group; SIGKILL after `timeout`. (seconds until it exited, killed?)"""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0, False
        started = time.monotonic()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            return time.monotonic() - started, False
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return time.monotonic() - started, True

    def pids(self) -> list[int]:
        return [] if self.proc is None or self.proc.poll() is not None else group_pids(self.proc.pid)


# -- what the watches saw -----------------------------------------------------------------------------------


@dataclass
class Seen:
    """One FlinkDeployment (one uid), with the wall-clock times at which the watch first showed each thing."""

    uid: str
    exists: float
    running: float | None = None
    healthy: float | None = None
    suspended: float | None = None


def checkpointed(job_status: dict[str, Any]) -> bool:
    """FKO reports a checkpoint it triggered after the job's start: the operator's Checkpointed gate."""
    last = ((job_status.get("checkpointInfo") or {}).get("lastCheckpoint") or {}).get("timeStamp")
    start = job_status.get("startTime")
    return last is not None and start is not None and int(last) > int(start)


class Recorder:
    """Called on the watch threads (it must not block): notes when each thing was first seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: dict[Key, Seen] = {}
        self._uids: dict[Key, list[str]] = {}
        self._ready: dict[tuple[str, str, int], float] = {}

    def on_fd(self, kind: str, obj: Obj) -> None:
        now = time.time()
        if kind == "DELETED":
            return
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        job_status = (obj.get("status") or {}).get("jobStatus") or {}
        desired = ((obj.get("spec") or {}).get("job") or {}).get("state")
        with self._lock:
            seen = self._fds.get(key)
            if seen is None or seen.uid != meta["uid"]:
                seen = self._fds[key] = Seen(meta["uid"], now)
                self._uids.setdefault(key, []).append(meta["uid"])
            if job_status.get("state") == "RUNNING":
                seen.running = seen.running or now
                if seen.healthy is None and checkpointed(job_status):
                    seen.healthy = now
            if desired == "suspended" and seen.suspended is None:
                seen.suspended = now

    def on_streamjob(self, kind: str, obj: Obj) -> None:
        now = time.time()
        if kind == "DELETED":
            return
        meta = obj["metadata"]
        generation = int(meta.get("generation") or 0)
        for c in (obj.get("status") or {}).get("conditions") or []:
            if (
                c.get("type") == "Ready"
                and c.get("status") == "True"
                and int(c.get("observedGeneration") or generation) == generation
            ):
                with self._lock:
                    self._ready.setdefault((meta["namespace"], meta["name"], generation), now)

    def fd(self, namespace: str, name: str) -> Seen | None:
        with self._lock:
            seen = self._fds.get((namespace, name))
            return None if seen is None else Seen(**seen.__dict__)

    def uids(self, namespace: str, name: str) -> list[str]:
        with self._lock:
            return list(self._uids.get((namespace, name), []))

    def ready(self, namespace: str, name: str, generation: int) -> float | None:
        with self._lock:
            return self._ready.get((namespace, name, generation))


# -- the objects --------------------------------------------------------------------------------------------


def streamjob(name: str, bootstrap: str, topic: str, args: argparse.Namespace) -> dict[str, Any]:
    """A small valid StreamJob (as in tests/integration/test_streamjob.py), reading the test Kafka."""
    flink: dict[str, Any] = {"image": IMAGE, "flinkVersion": "v1_20", "sql": [SQL]}
    if args.checkpoint_interval:
        flink["flinkConfiguration"] = {
            "kubernetes.operator.periodic.checkpoint.interval": args.checkpoint_interval
        }
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": name},
        "spec": {
            "version": "v1",
            "source": {"kafka": {"bootstrapServers": bootstrap}, "topics": [topic]},
            "output": {"topic": {"base": f"{name}-out"}},
            "flink": flink,
            "upgrade": {"stableFor": args.stable_for},
        },
    }


def plain_fd(name: str, namespace: str) -> dict[str, Any]:
    """A FlinkDeployment of the size and shape the operator renders for the StreamJob above."""
    group = f"{namespace}.{name}.v1"
    return {
        "apiVersion": FLINK_DEPLOYMENTS.api_version,
        "kind": FLINK_DEPLOYMENTS.kind,
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "plain-client", "app.kubernetes.io/name": name},
        },
        "spec": {
            "image": IMAGE,
            "flinkVersion": "v1_20",
            "serviceAccount": "flink",
            "flinkConfiguration": {
                "kubernetes.operator.snapshot.resource.enabled": "false",
                "kubernetes.operator.periodic.checkpoint.interval": "60 s",
                "kappa.group-id": group,
                "kappa.transactional-id-prefix": group,
            },
            "jobManager": {"resource": {"cpu": 1.0, "memory": "1024m"}},
            "taskManager": {"resource": {"cpu": 1.0, "memory": "1024m"}, "replicas": 1},
            "job": {
                "jarURI": "local:///opt/flink/usrlib/kappa-sql-runner.jar",
                "entryClass": "dev.kappa.SqlRunner",
                "args": [
                    SQL.replace("${KAPPA_OUTPUT_TOPIC}", f"{name}-out.v1").replace("${KAPPA_GROUP_ID}", group)
                ],
                "parallelism": 1,
                "upgradeMode": "savepoint",
                "state": "running",
            },
        },
    }


def consumer_group(namespace: str, job: str, version: str) -> str:
    """As the operator names a version's group (kappa/render/names.py)."""
    return f"{namespace}.{job}.{version}"


# -- the API server's metrics -------------------------------------------------------------------------------


@dataclass
class ApiCounts:
    requests: Counter[tuple[str, str]]
    """apiserver_request_total by (verb, resource[/subresource])"""
    flows: Counter[str]
    """apiserver_flowcontrol_dispatched_requests_total by flow_schema"""


def api_counts(kubeconfig: str) -> ApiCounts:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/metrics"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    requests: Counter[tuple[str, str]] = Counter()
    flows: Counter[str] = Counter()
    for family in text_string_to_metric_families(done.stdout):
        for sample in family.samples:
            if sample.name == "apiserver_request_total":
                resource = sample.labels.get("resource", "")
                if sample.labels.get("subresource"):
                    resource += "/" + sample.labels["subresource"]
                requests[(sample.labels.get("verb", ""), resource)] += int(sample.value)
            elif sample.name == "apiserver_flowcontrol_dispatched_requests_total":
                flows[sample.labels.get("flow_schema", "")] += int(sample.value)
    return ApiCounts(requests, flows)


# -- the benchmark ------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.n: int = args.jobs
        self.source = Path(args.source).resolve()
        suffix = uuid.uuid4().hex[:6]
        self.ns, self.plain_ns = f"kappa-scale-{suffix}", f"kappa-scale-plain-{suffix}"
        self.floor_ns = f"kappa-scale-floor-{suffix}"
        self.topic = f"kappa-scale-{suffix}"
        self.jobs = [f"j-{i:04d}" for i in range(self.n)]
        self.stack = Stack()
        self.recorder = Recorder()
        self.rows: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.operator: Operator | None = None
        self.fko: FakeFlinkOperator | None = None
        self.watchers: list[ResourceWatcher] = []
        self.kafka: AdminClient | None = None
        self.groups: list[str] = []
        self.namespaces: list[str] = []
        self._local = threading.local()
        self.admin = ""  # the admin kubeconfig, once the control plane is up
        self.bootstrap = ""
        self.plain_latencies: list[float] = []
        self.floor_latencies: list[float] = []
        self.bench_dir = STATE / "bench"
        self.bench_dir.mkdir(parents=True, exist_ok=True)

    def requests_row(self, what: str, before: ApiCounts, after: ApiCounts, secs: float) -> None:
        """The API requests of a window, all clients: in all, per job, per second, and the most frequent."""
        requests = after.requests - before.requests
        total = sum(requests.values())
        self.row(
            f"API requests, {what} (all clients)",
            f"{total:,} ({total / self.n:.1f} per job, {total / max(secs, 1e-9):.0f}/s over {secs:.0f} s)",
        )
        top = ", ".join(f"{verb} {res} {n:,}" for (verb, res), n in requests.most_common(8))
        self.row("  by verb and resource", top or "-")

    def lag_poll_row(self, polls: Counter[str]) -> None:
        """The operator's lag polls in the window: its rounds over every job's group, their mean, and the
        least histogram bound under which all of them fell."""
        rounds = polls["count"]
        if not rounds:
            self.row("operator's lag poll at rest", "no round in the window")
            return
        bounds = sorted(
            (float(key.removeprefix("le=")), n) for key, n in polls.items() if key.startswith("le=")
        )
        under = next((bound for bound, n in bounds if n >= rounds), math.inf)
        self.row(
            f"operator's lag poll at rest ({self.n} groups)",
            f"{rounds:.0f} rounds, mean {polls['sum'] / rounds:.2f} s, all ≤ {under:g} s, "
            f"{polls['errors']:.0f} failed",
        )

    def cpu_now(self) -> dict[str, float]:
        """CPU seconds so far of the operator (its process now: 0 while stopped), the API server, etcd and
        this process (the FKO double and the watches)."""
        assert self.operator is not None
        me = os.times()
        taken = {"operator": cpu_seconds(self.operator.pids())}
        for name in ("kube-apiserver", "etcd"):
            if (pid := pid_of(name)) is not None:
                taken[name] = cpu_seconds([pid])
        taken["this process"] = me.user + me.system
        return taken

    def cpu_row(self, what: str, before: dict[str, float], secs: float) -> None:
        """Who used the machine's cores over a window: whether the API server had them to itself."""
        after = self.cpu_now()
        secs = max(secs, 1e-9)
        used = {name: (after[name] - before[name]) / secs * 100 for name in before if name in after}
        shares = ", ".join(f"{name} {pct:.0f} %" for name, pct in used.items())
        self.row(
            f"CPU, {what} (% of a core)",
            f"{shares}; together {sum(used.values()):.0f} % of {100 * (os.cpu_count() or 1)} %",
        )

    def row(self, key: str, value: str) -> None:
        self.rows.append((key, value))
        say(f"{key}: {value}")

    # -- clients --------------------------------------------------------------------------------------------

    def custom(self) -> kube_client.CustomObjectsApi:
        """This thread's own client: the creating threads are independent clients, as users would be."""
        api: kube_client.CustomObjectsApi | None = getattr(self._local, "custom", None)
        if api is None:
            api = self._local.custom = kube_client.CustomObjectsApi(api_client(self.admin))
        return api

    def in_pool(self, names: list[str], call: Callable[[str], object]) -> dict[str, float]:
        """Run `call(name)` for every name on --clients threads; the wall-clock time just before each call."""
        sent: dict[str, float] = {}
        errors: list[str] = []

        def one(name: str) -> None:
            sent[name] = time.time()
            try:
                call(name)
            except ApiException as e:
                errors.append(f"{name}: {e.status} {e.reason}")

        with ThreadPoolExecutor(self.args.clients) as pool:
            list(pool.map(one, names))
        if errors:
            self.notes.append(f"{len(errors)} calls refused, e.g. {errors[0]}")
            say(f"warning: {len(errors)} calls refused, e.g. {errors[0]}")
        return sent

    def wait(self, what: str, missing: Callable[[], int], timeout: float) -> float | None:
        """Poll until `missing()` is 0; the seconds it took, or None on timeout (the count left is said)."""
        started = time.monotonic()
        next_say = started + 15
        while True:
            left = missing()
            if left == 0:
                return time.monotonic() - started
            now = time.monotonic()
            if now - started >= timeout:
                say(f"  {what}: {left} of {self.n} still missing after {timeout:.0f} s")
                return None
            if now >= next_say:
                say(f"  {what}: {left} of {self.n} to go ({now - started:.0f} s)")
                next_say = now + 15
            time.sleep(0.2)

    # -- bring up -------------------------------------------------------------------------------------------

    def bring_up(self) -> None:
        self.admin = self.stack.up("controlplane.sh", "control plane")
        self.bootstrap = self.stack.up("kafka.sh", "Kafka", timeout=1200)
        kubectl = ["kubectl", "--kubeconfig", self.admin]
        apply = [*kubectl, "apply", "--server-side", "--field-manager=kappa-install", "--force-conflicts"]
        # manifests/crds since the Helm chart came; crds/ in older source trees.
        crds = next(d for d in (self.source / "manifests" / "crds", self.source / "crds") if d.is_dir())
        subprocess.run(
            [*apply, "-f", str(crds)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Established", "--timeout=60s"]
            + [f"crd/{p}.kappa.dev" for p in KAPPA_CRDS],
            check=True,
            capture_output=True,
            timeout=90,
        )
        install_upstream_crds(Path(self.admin))
        say("CRDs installed: kappa's from the source tree, FKO's and Strimzi's")
        operator_kubeconfig = self.bench_dir / f"operator-{self.ns}.kubeconfig"
        subprocess.run(
            [
                "bash",
                str(self.source / "testbed" / "operator-kubeconfig.sh"),
                self.admin,
                str(operator_kubeconfig),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        core = kube_client.CoreV1Api(api_client(self.admin))
        for ns in (self.ns, self.plain_ns):
            core.create_namespace(kube_client.V1Namespace(metadata=kube_client.V1ObjectMeta(name=ns)))
            self.namespaces.append(ns)
        self.kafka = AdminClient({"bootstrap.servers": self.bootstrap})
        self.kafka.create_topics([NewTopic(self.topic, 1, 1)])[self.topic].result(30)
        producer = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": f"{self.topic}-seed"})
        producer.init_transactions(30)
        producer.begin_transaction()
        for i in range(RECORDS):
            producer.produce(self.topic, value=f"click {i}".encode())
        producer.commit_transaction(30)
        self.fko = FakeFlinkOperator(
            self.admin, namespaces=(self.ns,), tick=self.args.fko_tick, parallelism=self.args.fko_parallelism
        ).start(60)
        for resource, on_change in (
            (FLINK_DEPLOYMENTS, self.recorder.on_fd),
            (STREAMJOBS, self.recorder.on_streamjob),
        ):
            watcher = ResourceWatcher(
                self.admin, resource, on_change=on_change, name=f"bench-{resource.plural}"
            )
            watcher.start(60)
            self.watchers.append(watcher)
        log = self.bench_dir / f"operator-{self.ns}.log"
        self.operator = Operator(self.source, operator_kubeconfig, log, self.args)
        say(f"operator: kappa from {self.operator.package()}; log {log}")
        up = self.operator.start()
        say(f"  operator PID {self.operator.proc and self.operator.proc.pid}, healthy after {up:.1f} s")

    # -- 1. the plain client --------------------------------------------------------------------------------

    def plain(self) -> None:
        say(f"plain client: {self.n} FlinkDeployments in {self.plain_ns} from {self.args.clients} threads")
        names = [f"p-{i:04d}" for i in range(self.n)]
        r = FLINK_DEPLOYMENTS
        started = time.time()
        sent = self.in_pool(
            names,
            lambda name: self.custom().create_namespaced_custom_object(
                r.group, r.version, self.plain_ns, r.plural, plain_fd(name, self.plain_ns)
            ),
        )
        created = time.time() - started
        took = self.wait(
            "plain FlinkDeployments seen",
            lambda: sum(self.recorder.fd(self.plain_ns, name) is None for name in names),
            self.args.timeout,
        )
        latencies = [s.exists - sent[name] for name in names if (s := self.recorder.fd(self.plain_ns, name))]
        self.plain_latencies = latencies
        self.row("plain client: create → FlinkDeployment exists", spread(latencies))
        self.row(
            "plain client: all created / all seen",
            f"{created:.1f} s / {'-' if took is None else f'{time.time() - started:.1f} s'}",
        )
        self.delete_namespace(self.plain_ns)

    # -- 1b. the floor: the least any controller can do -----------------------------------------------------

    def floor(self) -> None:
        """The least any controller can do here: benchmarks/floor_controller.py, a process of its own, watches
        request objects (FlinkDeployments labelled `kappa-bench/request`, in a namespace of their own) and
        answers each with one create of a child, from --clients threads. Request create → child seen is what
        a controller costs on this machine before it reads, decides or records anything."""
        say(f"floor: {self.n} requests in {self.floor_ns}, each answered by one create")
        core = kube_client.CoreV1Api(api_client(self.admin))
        core.create_namespace(kube_client.V1Namespace(metadata=kube_client.V1ObjectMeta(name=self.floor_ns)))
        self.namespaces.append(self.floor_ns)
        controller = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "floor_controller.py"),
                self.admin,
                self.floor_ns,
                str(self.args.clients),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert controller.stdout is not None
            if controller.stdout.readline().strip() != "ready":
                raise SystemExit("the floor controller did not start")
            r = FLINK_DEPLOYMENTS
            names = [f"r-{i:04d}" for i in range(self.n)]

            def request(name: str) -> dict[str, Any]:
                fd = plain_fd(name, self.floor_ns)
                fd["metadata"]["labels"][REQUEST] = "true"
                return fd

            started = time.time()
            sent = self.in_pool(
                names,
                lambda name: self.custom().create_namespaced_custom_object(
                    r.group, r.version, self.floor_ns, r.plural, request(name)
                ),
            )
            self.wait(
                "floor children seen",
                lambda: sum(self.recorder.fd(self.floor_ns, f"{name}-child") is None for name in names),
                self.args.timeout,
            )
        finally:
            if controller.stdin is not None:
                controller.stdin.close()
            controller.wait(60)
        latencies = [
            s.exists - sent[name] for name in names if (s := self.recorder.fd(self.floor_ns, f"{name}-child"))
        ]
        self.floor_latencies = latencies
        self.row("floor controller: request create → child exists", spread(latencies))
        self.row("floor controller: all children seen", f"{time.time() - started:.1f} s after the first")
        p99, plain99 = pct(latencies, 0.99), pct(self.plain_latencies, 0.99)
        if p99 is not None and plain99:
            self.row("floor controller p99 ÷ plain client p99", f"{p99 / plain99:,.1f} times")
        self.delete_namespace(self.floor_ns)

    # -- 2. the operator ------------------------------------------------------------------------------------

    def seed_groups(self) -> None:
        """Each v1 group commits past the last record: end - committed is the commit marker alone, which
        the lag poll recounts to a lag of 0, as for a healthy job at rest on a transactional topic. (A lag
        that never moves would turn the lag verdict to STALL, then STOP, minutes after the creates: each
        turn wakes the job, and the window at rest would measure those looks.)"""
        assert self.kafka is not None
        self.groups = [consumer_group(self.ns, job, "v1") for job in self.jobs]
        futures = []
        for group in self.groups:
            request = [ConsumerGroupTopicPartitions(group, [TopicPartition(self.topic, 0, SEEDED_AT)])]
            futures += list(self.kafka.alter_consumer_group_offsets(request).values())
        for future in futures:
            future.result(60)

    def streamjobs(self) -> None:
        self.seed_groups()
        say(f"operator: {self.n} StreamJobs in {self.ns} from {self.args.clients} threads")
        r = STREAMJOBS
        counted = api_counts(self.admin)
        cpu = self.cpu_now()
        started = time.time()
        sent = self.in_pool(
            self.jobs,
            lambda name: self.custom().create_namespaced_custom_object(
                r.group, r.version, self.ns, r.plural, streamjob(name, self.bootstrap, self.topic, self.args)
            ),
        )
        self.row("StreamJobs: all created", f"{time.time() - started:.1f} s")
        took = self.wait(
            "v1 FlinkDeployments",
            lambda: sum(self.recorder.fd(self.ns, f"{job}-v1") is None for job in self.jobs),
            self.args.timeout,
        )
        latencies = [
            s.exists - sent[job] for job in self.jobs if (s := self.recorder.fd(self.ns, f"{job}-v1"))
        ]
        self.row("operator: create → FlinkDeployment exists", spread(latencies))
        p99, plain99 = pct(latencies, 0.99), pct(self.plain_latencies, 0.99)
        if p99 is not None and plain99:
            self.row("operator p99 ÷ plain client p99", f"{p99 / plain99:,.1f} times")
        floor99 = pct(self.floor_latencies, 0.99)
        if p99 is not None and floor99:
            self.row("operator p99 ÷ floor controller p99", f"{p99 / floor99:,.1f} times")
        self.row(
            "operator: all FlinkDeployments exist",
            f"{time.time() - started:.1f} s after the first create"
            if took is not None
            else f"{len(latencies)} of {self.n} after {self.args.timeout:.0f} s",
        )
        took = self.wait(
            "Ready StreamJobs",
            lambda: sum(self.recorder.ready(self.ns, job, 1) is None for job in self.jobs),
            self.args.ready_timeout,
        )
        ready = {job: t for job in self.jobs if (t := self.recorder.ready(self.ns, job, 1)) is not None}
        self.row(
            "operator: all StreamJobs Ready",
            f"{time.time() - started:.1f} s after the first create"
            if took is not None
            else f"{len(ready)} of {self.n} after {self.args.ready_timeout:.0f} s more",
        )
        self.requests_row("create → all Ready", counted, api_counts(self.admin), time.time() - started)
        self.cpu_row("create → all Ready", cpu, time.time() - started)
        after_running, after_healthy = [], []
        not_healthy = 0
        for job, at in ready.items():
            seen = self.recorder.fd(self.ns, f"{job}-v1")
            if seen is None:
                continue
            if seen.running is not None:
                after_running.append(at - seen.running)
            if seen.healthy is not None:
                after_healthy.append(at - seen.healthy)
        for job in self.jobs:
            seen = self.recorder.fd(self.ns, f"{job}-v1")
            not_healthy += seen is None or seen.healthy is None
        self.row("Ready after FKO reports RUNNING", spread(after_running))
        self.row("Ready after FKO reports healthy (RUNNING + checkpoint)", spread(after_healthy))
        if not_healthy:
            self.row("FlinkDeployments never healthy", f"{not_healthy} of {self.n}")

    # -- 3. at rest -----------------------------------------------------------------------------------------

    def at_rest(self) -> None:
        assert self.operator is not None
        say(f"at rest: settling {self.args.settle:.0f} s, then {self.args.rest:.0f} s of samples")
        time.sleep(self.args.settle)
        services = {name: pid for name in ("kube-apiserver", "etcd") if (pid := pid_of(name)) is not None}
        me = os.times()
        before = api_counts(self.admin)
        t0 = time.monotonic()
        op0 = cpu_seconds(self.operator.pids())
        svc0 = {name: cpu_seconds([pid]) for name, pid in services.items()}
        polls0 = self.operator.lag_polls()
        rss: list[float] = []
        while time.monotonic() - t0 < self.args.rest:
            rss.append(rss_mib(self.operator.pids()))
            time.sleep(min(5.0, max(0.0, self.args.rest - (time.monotonic() - t0))))
        op1 = cpu_seconds(self.operator.pids())
        svc1 = {name: cpu_seconds([pid]) for name, pid in services.items()}
        polls = self.operator.lag_polls()
        polls.subtract(polls0)
        secs = time.monotonic() - t0
        after = api_counts(self.admin)
        me1 = os.times()
        rss.append(rss_mib(self.operator.pids()))
        self.row("operator RSS at rest", f"{rss[-1]:.0f} MiB (peak in the window {max(rss):.0f} MiB)")
        if (self.args.tracemalloc or self.args.memstats) and self.operator.proc is not None:
            os.kill(self.operator.proc.pid, signal.SIGUSR2)
            self.notes.append(f"allocations at rest: {self.operator.log.with_suffix('.memory')}")
        self.row("operator CPU at rest", f"{(op1 - op0) / secs * 100:.1f} % of a core over {secs:.0f} s")
        for name in services:
            self.row(f"{name} CPU at rest", f"{(svc1[name] - svc0[name]) / secs * 100:.1f} % of a core")
        mine = (me1.user + me1.system - me.user - me.system) / secs * 100
        self.row("this process (FKO double + watches) CPU at rest", f"{mine:.1f} % of a core")
        requests = after.requests - before.requests
        total = sum(requests.values())
        self.row("API requests/s at rest (apiserver_request_total, all clients)", f"{total / secs:.1f}")
        top = ", ".join(f"{verb} {res} {n / secs:.1f}" for (verb, res), n in requests.most_common(8))
        self.row("  by verb and resource (/s)", top or "-")
        flows = after.flows - before.flows
        if flows:
            shares = ", ".join(f"{schema} {n / secs:.1f}" for schema, n in flows.most_common())
            self.row("  by flow schema (/s; the operator is service-accounts)", shares)
        else:
            self.row("  by client", "not separable: no apiserver_flowcontrol_dispatched_requests_total")
        self.lag_poll_row(polls)
        self.row("load average at rest", load())

    # -- 4. restart -----------------------------------------------------------------------------------------

    def restart(self) -> None:
        assert self.operator is not None
        uids = {job: s.uid for job in self.jobs if (s := self.recorder.fd(self.ns, f"{job}-v1"))}
        secs, killed = self.operator.stop(self.args.stop_timeout)
        self.row(
            "SIGTERM → operator exited",
            f"killed after {secs:.0f} s (SIGTERM not honoured)" if killed else f"{secs:.1f} s",
        )
        r = STREAMJOBS
        patched = time.monotonic()
        self.in_pool(
            self.jobs,
            lambda name: self.custom().patch_namespaced_custom_object(
                r.group,
                r.version,
                self.ns,
                r.plural,
                name,
                {"spec": {"version": "v2"}},
                _content_type="application/merge-patch+json",
            ),
        )
        say(
            f"restart: every StreamJob moved to v2 while the operator was down "
            f"({time.monotonic() - patched:.1f} s)"
        )
        counted = api_counts(self.admin)
        cpu = self.cpu_now()
        started = time.time()
        up = self.operator.start()
        self.row("operator start → /healthz", f"{up:.1f} s")

        def v1_suspended(job: str) -> float | None:
            seen = self.recorder.fd(self.ns, f"{job}-v1")
            return None if seen is None else seen.suspended

        def v2_exists(job: str) -> float | None:
            seen = self.recorder.fd(self.ns, f"{job}-v2")
            return None if seen is None else seen.exists

        took = self.wait(
            "jobs up to date (v1 suspended and v2 deployed)",
            lambda: sum(v1_suspended(job) is None or v2_exists(job) is None for job in self.jobs),
            self.args.restart_timeout,
        )
        suspended = [t - started for job in self.jobs if (t := v1_suspended(job)) is not None]
        deployed = [t - started for job in self.jobs if (t := v2_exists(job)) is not None]
        self.row("restart → v1 FlinkDeployment suspended", spread(suspended))
        self.row("restart → v2 FlinkDeployment exists", spread(deployed))
        self.row(
            "restart → all up to date",
            f"{max(deployed + suspended):.1f} s after the start"
            if took is not None
            else f"{min(len(suspended), len(deployed))} of {self.n} after {self.args.restart_timeout:.0f} s",
        )
        self.requests_row("restart → all up to date", counted, api_counts(self.admin), time.time() - started)
        self.cpu_row("restart → all up to date", cpu, time.time() - started)
        r = FLINK_DEPLOYMENTS
        listed: Any = self.custom().list_namespaced_custom_object(r.group, r.version, self.ns, r.plural)
        now = {item["metadata"]["name"]: item["metadata"]["uid"] for item in listed["items"]}
        recreated = sum(
            now.get(f"{job}-v1") != uid or len(self.recorder.uids(self.ns, f"{job}-v1")) > 1
            for job, uid in uids.items()
        )
        self.row("v1 FlinkDeployments recreated or gone (uid changed)", f"{recreated} of {len(uids)}")

    # -- cleanup and report ---------------------------------------------------------------------------------

    def _release(self, r: Resource, namespace: str) -> Callable[[str], object]:
        """Remove an object's finalizers: with the operator stopped, nobody would run them."""

        def release(name: str) -> object:
            return self.custom().patch_namespaced_custom_object(
                r.group,
                r.version,
                namespace,
                r.plural,
                name,
                {"metadata": {"finalizers": None}},
                _content_type="application/merge-patch+json",
            )

        return release

    def delete_namespace(self, namespace: str) -> None:
        """Strip the finalizers of what is left (nobody will run them), delete the namespace, wait for it."""
        started = time.monotonic()
        for resource in (STREAMJOBS, FLINK_DEPLOYMENTS):
            try:
                listed: Any = self.custom().list_namespaced_custom_object(
                    resource.group, resource.version, namespace, resource.plural
                )
            except ApiException as e:
                say(f"warning: listing {resource.plural} in {namespace}: {e.status} {e.reason}")
                continue
            held = [o["metadata"]["name"] for o in listed["items"] if o["metadata"].get("finalizers")]
            self.in_pool(held, self._release(resource, namespace))
        core = kube_client.CoreV1Api(api_client(self.admin))
        try:
            core.delete_namespace(namespace)
        except ApiException as e:
            if e.status != 404:
                raise
        while time.monotonic() - started < 600:
            try:
                core.read_namespace(namespace)
            except ApiException as e:
                if e.status == 404:
                    say(f"namespace {namespace} deleted ({time.monotonic() - started:.0f} s)")
                    if namespace in self.namespaces:
                        self.namespaces.remove(namespace)
                    return
                raise
            time.sleep(1)
        say(f"warning: namespace {namespace} still there after 600 s")

    def cleanup(self) -> None:
        if self.operator is not None:
            self.operator.stop(self.args.stop_timeout)
        for namespace in list(self.namespaces):
            try:
                self.delete_namespace(namespace)
            except Exception as e:  # go on with the rest of the cleanup
                say(f"warning: deleting {namespace}: {e}")
        if self.fko is not None:
            self.fko.stop()
            if self.fko.errors:
                say(
                    f"warning: the FKO double recorded {len(self.fko.errors)} errors, "
                    f"e.g. {self.fko.errors[0]}"
                )
        for watcher in self.watchers:
            watcher.stop()
        if self.kafka is not None:
            try:
                if self.groups:
                    for future in self.kafka.delete_consumer_groups(self.groups, request_timeout=60).values():
                        future.result(60)
                self.kafka.delete_topics([self.topic])[self.topic].result(60)
            except Exception as e:
                say(f"warning: Kafka cleanup: {e}")
            del self.kafka
        if not self.args.keep_stack:
            self.stack.down()

    def report(self, started_load: str) -> None:
        rows = [
            ("command", " ".join([sys.executable, *sys.argv])),
            ("source", str(self.source)),
            ("StreamJobs", f"{self.n}"),
            (
                "operator flags",
                f"--reconcile-interval {self.args.reconcile_interval} "
                f"--lag-interval {self.args.lag_interval}",
            ),
            ("load average at the start", started_load),
            *self.rows,
            ("load average at the end", load()),
            ("cores", str(os.cpu_count())),
        ]
        rows += [("note", note) for note in self.notes]
        width = max(len(k) for k, _ in rows)
        print()
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
        print(flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--jobs", type=int, default=100, help="StreamJobs (and plain FlinkDeployments): 100, 300, 1000"
    )
    ap.add_argument(
        "--source", default=str(ROOT), help="the source tree whose operator runs (default: this repo)"
    )
    ap.add_argument("--clients", type=int, default=16, help="creating threads, each with its own client")
    ap.add_argument("--reconcile-interval", type=float, default=10.0, help="the operator's (production: 10)")
    ap.add_argument("--lag-interval", type=float, default=10.0, help="the operator's (production: 10)")
    ap.add_argument("--stable-for", default="0s", help="spec.upgrade.stableFor of every StreamJob")
    ap.add_argument(
        "--checkpoint-interval",
        help="kubernetes.operator.periodic.checkpoint.interval in each StreamJob's flinkConfiguration; "
        "default: none, the operator's own (a fifth of readinessTimeout, 60 s)",
    )
    ap.add_argument(
        "--fko-tick", type=float, default=0.5, help="seconds between the FKO double's idle passes"
    )
    ap.add_argument(
        "--fko-parallelism",
        type=int,
        default=16,
        help="FlinkDeployments the FKO double reconciles at once (FKO's reconcile.parallelism: 50)",
    )
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for all FlinkDeployments")
    ap.add_argument("--ready-timeout", type=float, default=600, help="seconds more to wait for all Ready")
    ap.add_argument("--settle", type=float, default=20, help="seconds between Ready and the rest window")
    ap.add_argument("--rest", type=float, default=60, help="seconds of the rest window")
    ap.add_argument("--stop-timeout", type=float, default=60, help="seconds from SIGTERM to SIGKILL")
    ap.add_argument("--restart-timeout", type=float, default=900, help="seconds to wait for all up to date")
    ap.add_argument("--keep-stack", action="store_true", help="leave services this run started running")
    ap.add_argument(
        "--tracemalloc",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="FRAMES",
        help="trace the operator's allocations (slower; for memory); FRAMES > 1: the top tracebacks too",
    )
    ap.add_argument(
        "--memstats",
        action="store_true",
        help="at rest, the operator writes its memory maps, object counts and pymalloc's arenas (not slower)",
    )
    ap.add_argument("--verbose", action="store_true", help="the operator logs Kopf's every step (slower)")
    ap.add_argument("--no-floor", action="store_true", help="skip the minimal controller's run")
    args = ap.parse_args()
    bench = Bench(args)
    started_load = load()
    say(f"load average at the start: {started_load}")
    try:
        bench.bring_up()
        bench.plain()
        if not args.no_floor:
            bench.floor()
        bench.streamjobs()
        bench.at_rest()
        bench.restart()
    finally:
        try:
            bench.cleanup()
        finally:
            bench.report(started_load)


if __name__ == "__main__":
    main()
