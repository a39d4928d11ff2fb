"""The local test bed as tests see it: a kubectl bound to a kubeconfig, and the operator as a process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from kappa.adapters.kafka.admin import KafkaAdmin
from tests.doubles.fixtures import remove_strimzi_kafka_kind

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Kubectl:
    kubeconfig: Path
    namespace: str | None = None

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig)]
        if self.namespace:
            cmd += ["-n", self.namespace]
        proc = subprocess.run([*cmd, *args], input=input, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    def __call__(self, *args: str, **kw: Any) -> str:
        return self.run(*args, **kw).stdout

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.kubeconfig, namespace)

    def apply(
        self, manifest: str | dict[str, Any] | Path, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if isinstance(manifest, Path):
            return self.run("apply", "-f", str(manifest), check=check)
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.run("apply", "-f", "-", input=text, check=check)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return json.loads(self("get", kind, name, "-o", "json", "--show-managed-fields"))  # type: ignore[no-any-return]

    def wait_for(
        self, kind: str, name: str, predicate: Any, timeout: float = 30, what: str = ""
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        obj: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = self.get(kind, name)
            if predicate(obj):
                return obj
            time.sleep(0.3)
        raise AssertionError(
            f"{kind}/{name}: timed out after {timeout}s waiting for {what}; last: "
            f"{json.dumps(obj.get('status'), indent=1)}"
        )


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}


def sql_runner_jar() -> Path:
    """Where testbed/flink.sh runner-jar puts the SQL runner (FLINK_VERSION as in that script)."""
    cache = Path(os.environ.get("KAPPA_CACHE") or Path.home() / ".cache" / "kappa-operator")
    return cache / "flink" / "sql-runner" / os.environ.get("FLINK_VERSION", "2.3.0") / "kappa-sql-runner.jar"


class OperatorProcess:
    """`kappa run` as a separate process, the way it runs in a cluster, with its log in a file."""

    def __init__(
        self, kubeconfig: Path, log_path: Path, health_port: int, metrics_port: int, args: Iterable[str] = ()
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.health_port = health_port
        self.metrics_port = metrics_port
        self.args = list(args)  # more `kappa run` flags
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60, env: dict[str, str] | None = None) -> None:
        log = self.log_path.open("ab")
        kappa = Path(sys.executable).parent / "kappa"
        self.proc = subprocess.Popen(
            [
                str(kappa),
                "run",
                "--kubeconfig",
                str(self.kubeconfig),
                "--health-port",
                str(self.health_port),
                "--metrics-port",
                str(self.metrics_port),
                "--lag-interval",
                "1",
                "--reconcile-interval",
                "1",
                # The session runtime's SQL jobs (testbed/flink.sh runner-jar builds it; read at submit only).
                "--sql-runner-jar",
                str(sql_runner_jar()),
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1):
                    time.sleep(0.2)
                    if self.proc.poll() is not None:  # someone else's operator answered on our port
                        raise RuntimeError(
                            f"operator exited with {self.proc.returncode}; see {self.log_path}"
                        )
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"operator not healthy after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def exited(self) -> int | None:
        """The exit code, once the process has ended (a failpoint, a crash); None while it runs."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """A crash: SIGKILL, no cleanup."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample from the operator's /metrics, as Prometheus would scrape it."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None


class KafkaTestbed:
    """The test Kafka as a test sees it: make topics, produce with known timestamps, consume and commit."""

    def __init__(self, bootstrap: str, admin: KafkaAdmin) -> None:
        self.bootstrap = bootstrap
        self.admin = admin

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    def topic(self, partitions: int = 3, **config: str) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        self.run(self.admin.ensure_topic(name, partitions=partitions, config=config))
        return name

    def produce(self, topic: str, records: Iterable[tuple[int, int]], *, transactional: bool = False) -> None:
        """records: (partition, timestamp_ms); the value says where it went."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "linger.ms": 0}
        if transactional:
            conf["transactional.id"] = f"test-{uuid.uuid4().hex[:8]}"
        producer = Producer(conf)
        if transactional:
            producer.init_transactions(10)
            producer.begin_transaction()
        for partition, ts in records:
            producer.produce(topic, value=f"{partition}@{ts}".encode(), partition=partition, timestamp=ts)
        if transactional:
            producer.commit_transaction(10)
        assert producer.flush(10) == 0

    def consume_and_commit(self, topic: str, group: str, counts: dict[int, int]) -> None:
        """Read `counts[p]` records from each partition (read_committed) and commit after the last one read,
        at last.offset + 1, the way Flink's Kafka source commits on checkpoint."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            }
        )
        try:
            commits = []
            for partition, count in counts.items():
                if count == 0:
                    continue
                committed = consumer.committed([TopicPartition(topic, partition)], 10)[0].offset
                consumer.assign([TopicPartition(topic, partition, committed if committed >= 0 else 0)])
                last = None
                seen = 0
                deadline = time.monotonic() + 20
                while seen < count and time.monotonic() < deadline:
                    msg = consumer.poll(0.5)
                    if msg is None or msg.error():
                        continue
                    last = msg.offset()
                    seen += 1
                assert seen == count, f"read {seen} of {count} records from {topic}[{partition}]"
                commits.append(TopicPartition(topic, partition, last + 1))
                consumer.unassign()
            if commits:
                consumer.commit(offsets=commits, asynchronous=False)
        finally:
            consumer.close()


def started_service(script: Path, what: str, timeout: float) -> Iterator[str]:
    """Run `script up` and yield the last line it prints (kubeconfig, bootstrap, URI). A service that was
    already running is left running; one started here is stopped here, also when its start failed halfway."""
    was_up = subprocess.run(["bash", str(script), "status"], capture_output=True).returncode == 0
    up = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=timeout)
    if up.returncode != 0:
        if not was_up:
            subprocess.run(["bash", str(script), "down"], capture_output=True, timeout=120)
        pytest.fail(f"{what} did not start:\n{up.stderr[-4000:]}")
    yield up.stdout.strip().splitlines()[-1]
    if not was_up and not os.environ.get("KAPPA_KEEP_TESTBED"):
        subprocess.run(["bash", str(script), "down"], capture_output=True, timeout=120)


KAFKA_STAND_IN = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "kafkas.kafka.strimzi.io"},
    "spec": {
        "group": "kafka.strimzi.io",
        "names": {"kind": "Kafka", "listKind": "KafkaList", "plural": "kafkas", "singular": "kafka"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
                "subresources": {"status": {}},
            }
        ],
    },
}
"""Strimzi's Kafka kind, group, names and version, without its schema: testbed/upstream-crds installs
Strimzi's KafkaTopic and KafkaUser only."""


@contextlib.contextmanager
def strimzi_kafka_kind(admin: Kubectl) -> Iterator[None]:
    """Strimzi's Kafka kind served for the block (when it is not already), then removed, and waited for:
    test_generated_specs relies on no Kafka kind being served."""
    install = admin.run("get", "crd", "kafkas.kafka.strimzi.io", check=False).returncode != 0
    if install:
        admin.apply(KAFKA_STAND_IN)
        admin("wait", "--for=condition=Established", "--timeout=30s", "crd/kafkas.kafka.strimzi.io")
    try:
        yield
    finally:
        if install:
            remove_strimzi_kafka_kind(admin.kubeconfig)
