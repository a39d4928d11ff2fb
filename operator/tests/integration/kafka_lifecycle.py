"""Stress of the Kafka adapter's client lifecycle, each scenario in its own Python process with faulthandler
on, so that a native crash is an exit code (-11 for SIGSEGV) and not a dead test run.

    PYTHONPATH=operator .venv/bin/python -m tests.integration.kafka_lifecycle [--rounds 5] [--seconds 8]

Scenarios:
- `cold`: a throwaway Kafka is started with fresh storage (its own state directory and ports, through
  testbed/kafka.sh); `--settle` seconds after it answers, the adapter reads committed offsets of new groups
  (`committed_many`, `committed`, `describe_groups`, `seed_group`) for `--seconds`. The cluster has no
  __consumer_offsets yet: the first group request creates it, and until it is loaded the coordinator answers
  COORDINATOR_NOT_AVAILABLE or NOT_COORDINATOR. That is `make run`'s first deploy on a fresh stack, where the
  operator died four times in librdkafka (rd_kafka_cgrp_op, called with the AdminClient's NULL group).
- `shared`: on the running test Kafka, one KafkaAdmin used at once by several threads, each with its own event
  loop, and by the main loop: topics, offsets, groups, record counts and timestamps (consumers in threads).
- `churn`: adapters created and closed while their requests are pending, dropped and garbage-collected, from
  several threads; quota clients (kafka-python) against a port where nothing listens must not leave threads.

Each worker prints one JSON line of counts; the parent prints one line per run and exits non-zero when a
worker died of a signal or hung (KAPPA_STRESS_VERBOSE=1: every failed call's error on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
KAFKA_SH = ROOT / "testbed" / "kafka.sh"


# -- workers (run in the child process) ---------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return f"KafkaException {exc.args[0].name()}"
    return type(exc).__name__


async def _count(stats: collections.Counter[str], what: str, coro: Any) -> Any:
    try:
        result = await coro
    except Exception as exc:
        stats[f"{what} failed: {_describe(exc)}"] += 1
        if os.environ.get("KAPPA_STRESS_VERBOSE"):
            print(f"{what}: {exc!r} from {exc.__cause__!r}", file=sys.stderr)
        return None
    stats[f"{what} ok"] += 1
    return result


async def cold_worker(bootstrap: str, seconds: float, readers: int = 8) -> dict[str, Any]:
    """New groups' offsets, read by several callers at once, as the lag poll and the replays of several
    resources read them on a fresh cluster."""
    from kappa.adapters.kafka.admin import KafkaAdmin

    admin = KafkaAdmin(bootstrap, timeout=3)
    stats: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + seconds

    async def reader() -> None:
        while time.monotonic() < deadline:
            groups = [f"cold-{uuid.uuid4().hex[:8]}" for _ in range(5)]
            await asyncio.gather(
                _count(stats, "committed_many", admin.committed_many(groups)),
                _count(stats, "committed", admin.committed(groups[0])),
                _count(stats, "describe_groups", admin.describe_groups(groups[:2])),
            )

    await asyncio.gather(*(reader() for _ in range(readers)))
    topic = f"cold-{uuid.uuid4().hex[:8]}"
    await _count(stats, "ensure_topic", admin.ensure_topic(topic, partitions=3))
    group = f"cold-{uuid.uuid4().hex[:8]}"
    await _count(
        stats, "seed_group", admin.seed_group(group, dict.fromkeys([(topic, p) for p in range(3)], 0))
    )
    seeded = await _count(stats, "committed (seeded)", admin.committed(group))
    return {"counts": dict(stats), "seeded": {f"{t}[{p}]": o for (t, p), o in (seeded or {}).items()}}


async def _mixed_ops(admin: Any, topic: str, stats: collections.Counter[str], seconds: float) -> None:
    parts = [(topic, p) for p in range(3)]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        group = f"shared-{uuid.uuid4().hex[:8]}"
        await asyncio.gather(
            _count(stats, "partitions", admin.partitions([topic])),
            _count(stats, "describe_topics", admin.describe_topics([topic])),
            _count(stats, "end_offsets", admin.end_offsets(parts)),
            _count(stats, "log_start_offsets", admin.log_start_offsets(parts)),
            _count(stats, "committed_many", admin.committed_many([group, "shared-none"])),
            _count(stats, "describe_groups", admin.describe_groups([group])),
            _count(stats, "count_records", admin.count_records({parts[0]: (0, 5)}, timeout=5)),
            _count(stats, "record_timestamps", admin.record_timestamps({parts[1]: 0}, timeout=5)),
        )
        await _count(stats, "seed_group", admin.seed_group(group, dict.fromkeys(parts, 1)))
        await _count(stats, "delete_group", admin.delete_group(group))


def _produce(bootstrap: str, topic: str, per_partition: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "log_level": 2})
    for p in range(3):
        for i in range(per_partition):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(10) == 0


async def shared_worker(bootstrap: str, seconds: float, threads: int = 4) -> dict[str, Any]:
    """One adapter, many threads and loops at once."""
    from kappa.adapters.kafka.admin import KafkaAdmin

    admin = KafkaAdmin(bootstrap, timeout=10)
    topic = f"shared-{uuid.uuid4().hex[:8]}"
    await admin.ensure_topic(topic, partitions=3)
    _produce(bootstrap, topic, 10)
    stats: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def in_thread() -> None:
        local: collections.Counter[str] = collections.Counter()
        asyncio.run(_mixed_ops(admin, topic, local, seconds))
        with lock:
            stats.update(local)

    workers = [threading.Thread(target=in_thread, name=f"shared-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    await _mixed_ops(admin, topic, stats, seconds)
    for worker in workers:
        await asyncio.to_thread(worker.join)
    await admin.delete_topic(topic)
    return {"counts": dict(stats)}


async def _churn_once(bootstrap: str, topic: str, stats: collections.Counter[str]) -> None:
    from kappa.adapters.kafka.admin import KafkaAdmin

    admin = KafkaAdmin(bootstrap, timeout=5)
    parts = [(topic, p) for p in range(3)]
    calls = {
        "end_offsets": admin.end_offsets(parts),
        "committed_many": admin.committed_many([f"churn-{uuid.uuid4().hex[:8]}"]),
        "describe_groups": admin.describe_groups(["churn-none"]),
        "count_records": admin.count_records({parts[0]: (0, 3)}, timeout=3),
    }
    pending = [asyncio.ensure_future(c) for c in calls.values()]
    names = dict(zip(pending, calls, strict=True))
    await asyncio.sleep(random.uniform(0, 0.05))
    if random.random() < 0.5:
        admin.close()  # while requests are in flight
    del admin  # and the other half is only dropped, with its requests in flight
    gc.collect()
    done, hung = await asyncio.wait(pending, timeout=20)
    stats["requests answered after close"] += sum(1 for t in done if not t.exception())
    for task in hung:
        stats[f"{names[task]} hung after close"] += 1
    for task in done:
        if task.exception() is not None:
            stats[f"{names[task]} failed after close: {_describe(task.exception())}"] += 1
    for task in hung:
        task.cancel()


def _quota_threads_after_outage() -> int:
    """Threads left behind by quota calls against a port where nothing listens."""
    from kappa.adapters.quota import ClientQuotas, QuotaError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    before = threading.active_count()
    quotas = ClientQuotas(f"127.0.0.1:{closed_port}", timeout=0.5)
    for _ in range(3):
        with contextlib.suppress(QuotaError, Exception):
            asyncio.run(quotas.consumer_byte_rate("churn"))
    quotas.close()
    time.sleep(0.5)
    return threading.active_count() - before


async def churn_worker(bootstrap: str, seconds: float, threads: int = 3) -> dict[str, Any]:
    """Adapters closed with requests pending, dropped, garbage-collected, from several threads."""
    from kappa.adapters.kafka.admin import KafkaAdmin

    setup = KafkaAdmin(bootstrap, timeout=10)
    topic = f"churn-{uuid.uuid4().hex[:8]}"
    await setup.ensure_topic(topic, partitions=3)
    _produce(bootstrap, topic, 3)
    stats: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    async def loop(local: collections.Counter[str]) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await _churn_once(bootstrap, topic, local)
            local["adapters churned"] += 1

    def in_thread() -> None:
        local: collections.Counter[str] = collections.Counter()
        asyncio.run(loop(local))
        with lock:
            stats.update(local)

    workers = [threading.Thread(target=in_thread, name=f"churn-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    await loop(stats)
    for worker in workers:
        await asyncio.to_thread(worker.join)
    await setup.delete_topic(topic)
    setup.close()
    del setup
    gc.collect()
    await asyncio.sleep(1)
    stats["kafka-python IO threads left"] = sum(
        t.name.startswith(("kafka-io", "kafka-groups")) for t in threading.enumerate()
    )
    stats["quota threads left after an outage"] = await asyncio.to_thread(_quota_threads_after_outage)
    return {"counts": dict(stats)}


WORKERS = {"cold": cold_worker, "shared": shared_worker, "churn": churn_worker}


def worker_main(scenario: str, bootstrap: str, seconds: float) -> None:
    import faulthandler

    faulthandler.enable()
    result = asyncio.run(WORKERS[scenario](bootstrap, seconds))
    print(json.dumps(result), flush=True)


# -- the parent: brokers and child processes --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fresh_kafka(offsets_partitions: int = 50) -> Iterator[str]:
    """A Kafka broker with new storage on free ports, stopped and deleted on exit; yields its bootstrap."""
    with tempfile.TemporaryDirectory(prefix="kappa-cold-kafka-") as state:
        env = {
            **os.environ,
            "KAPPA_TESTBED_DIR": state,
            "KAPPA_KAFKA_PORT": str(_free_port()),
            "KAPPA_KAFKA_CONTROLLER_PORT": str(_free_port()),
            "KAPPA_KAFKA_SASL_PORT": str(_free_port()),
            "KAPPA_KAFKA_SSL_PORT": str(_free_port()),
            # More group coordinator shards than the test bed's 5: each loads on its own once the first group
            # request has created __consumer_offsets, so the window where they answer "not ready" is longer.
            "KAPPA_KAFKA_OFFSETS_PARTITIONS": str(offsets_partitions),
        }
        try:
            up = subprocess.run(
                ["bash", str(KAFKA_SH), "up"], env=env, capture_output=True, text=True, timeout=180
            )
            if up.returncode != 0:
                raise RuntimeError(f"the throwaway Kafka did not start:\n{up.stderr[-3000:]}")
            yield up.stdout.strip().splitlines()[-1]
        finally:
            subprocess.run(["bash", str(KAFKA_SH), "down"], env=env, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Run:
    scenario: str
    returncode: int
    """Negative: killed by that signal (-11: SIGSEGV); None never: a hung worker is killed (-9)."""
    seconds: float
    result: dict[str, Any] | None
    stderr: str

    @property
    def crashed(self) -> bool:
        return self.returncode < 0

    def line(self) -> str:
        how = (
            f"killed by {signal.Signals(-self.returncode).name}"
            if self.crashed
            else f"exit {self.returncode}"
        )
        return f"{self.scenario}: {how} after {self.seconds:.1f}s; {json.dumps(self.result)}"


def run_worker(scenario: str, bootstrap: str, seconds: float, *, pythonpath: str | None = None) -> Run:
    """One scenario in a child process; `pythonpath` puts another copy of the package first (an old one)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [pythonpath, str(ROOT / "operator")]))}
    started = time.monotonic()
    timeout = seconds + 60
    proc = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "faulthandler",
            "-m",
            "tests.integration.kafka_lifecycle",
            "--worker",
            scenario,
            "--bootstrap",
            bootstrap,
            "--seconds",
            str(seconds),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines and proc.returncode == 0 else None
    return Run(scenario, proc.returncode, time.monotonic() - started, result, err[-4000:])


def cold_run(seconds: float, settle: float, *, pythonpath: str | None = None) -> Run:
    with fresh_kafka() as bootstrap:
        time.sleep(settle)
        return run_worker("cold", bootstrap, seconds, pythonpath=pythonpath)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", default=f"127.0.0.1:{os.environ.get('KAPPA_KAFKA_PORT', '19092')}")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long each worker runs")
    parser.add_argument("--rounds", type=int, default=5, help="cold brokers to start")
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds between a cold broker's start and use"
    )
    parser.add_argument("--scenarios", default="cold,shared,churn")
    parser.add_argument(
        "--pythonpath", help="run the workers on another copy of operator/ (e.g. an old commit)"
    )
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.bootstrap, args.seconds)
        return 0
    runs: list[Run] = []
    for scenario in args.scenarios.split(","):
        rounds = args.rounds if scenario == "cold" else 1
        for _ in range(rounds):
            if scenario == "cold":
                run = cold_run(args.seconds, args.settle, pythonpath=args.pythonpath)
            else:
                run = run_worker(scenario, args.bootstrap, args.seconds, pythonpath=args.pythonpath)
            runs.append(run)
            print(run.line(), flush=True)
            if run.crashed or run.returncode:
                print(run.stderr, file=sys.stderr)
    bad = [r for r in runs if r.returncode or not r.result]
    print(f"{len(runs)} run(s), {sum(r.crashed for r in runs)} killed by a signal, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
