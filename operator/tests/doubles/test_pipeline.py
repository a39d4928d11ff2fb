"""The data-plane double moves real records, Kafka → PostgreSQL (and an output topic), inside the
FlinkDeployments the FKO double runs: right sums, offsets committed after the table, exactly once through
suspend/resume and crash loops, scripted logic per version. Real API server, Kafka and PostgreSQL; no
operator."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kubernetes import client
from psycopg import sql

from tests.doubles.double import wait_until
from tests.doubles.fko import FLINK_DEPLOYMENTS, FakeFlinkOperator
from tests.doubles.kube_watch import api_client
from tests.doubles.pipeline import FakePipeline

Event = tuple[str, Decimal]
Row = tuple[int, Decimal, str]
"""events, revenue, version"""

FD = FLINK_DEPLOYMENTS


# --- the test beds as a test sees them ---------------------------------------------------------------------


class Kafka:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def topic(self, partitions: int = 3) -> str:
        name = f"p-{uuid.uuid4().hex[:10]}"
        futures = self.admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
        futures[name].result(15)
        return name

    def produce(self, topic: str, events: list[Event], timestamp_ms: int | None = None) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        for user, amount in events:
            value = f'{{"user": "{user}", "amount": {amount}}}'.encode()
            if timestamp_ms is None:
                producer.produce(topic, key=user.encode(), value=value)
            else:
                producer.produce(topic, key=user.encode(), value=value, timestamp=timestamp_ms)
        assert producer.flush(10) == 0

    def _consumer(self, group: str | None = None) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": group or f"probe-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )

    def ends(self, topic: str, partitions: int = 3) -> dict[int, int]:
        consumer = self._consumer()
        try:
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in range(partitions)
            }
        finally:
            consumer.close()

    def committed(self, group: str, topic: str, partitions: int = 3) -> dict[int, int]:
        consumer = self._consumer(group)
        try:
            got = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
            return {tp.partition: tp.offset for tp in got}
        finally:
            consumer.close()

    def read_all(self, topic: str, count: int, partitions: int = 3) -> list[dict[str, Any]]:
        """`count` records from the start of `topic`, in order per partition."""
        consumer = self._consumer()
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
            values: list[dict[str, Any]] = []
            deadline = time.monotonic() + 15
            while len(values) < count and time.monotonic() < deadline:
                for m in consumer.consume(500, 0.2):
                    assert m.error() is None, m.error()
                    values.append(json.loads(m.value() or b"", parse_float=Decimal))
            time.sleep(0.2)
            assert not consumer.consume(10, 0.2), "more than the expected records"
            return values
        finally:
            consumer.close()


@pytest.fixture(scope="module")
def kafka(kafka_bootstrap: str) -> Kafka:
    return Kafka(kafka_bootstrap)


@pytest.fixture
def custom(control_plane: Path) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client(control_plane))


@pytest.fixture
def schema(
    postgres_uri: str,
    pipeline: FakePipeline,
    custom: client.CustomObjectsApi,
    namespace: str,
) -> Iterator[str]:
    """A fresh PostgreSQL schema for the test's tables, dropped afterwards once the test's jobs are gone."""
    name = f"s_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    custom.delete_collection_namespaced_custom_object(FD.group, FD.version, namespace, FD.plural)
    wait_until(
        lambda: not [o for o in pipeline.watcher.snapshot() if o["metadata"]["namespace"] == namespace],
        what="the FlinkDeployments to go",
    )
    wait_until(lambda: not pipeline.active(namespace), what="the runs to stop")
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def rows(postgres_uri: str, schema: str, table: str) -> dict[str, Row]:
    with psycopg.connect(postgres_uri) as conn:
        got = conn.execute(
            sql.SQL("SELECT user_id, events, revenue, version FROM {}").format(sql.Identifier(schema, table))
        ).fetchall()
    return {u: (e, r, v) for u, e, r, v in got}


def table_exists(postgres_uri: str, schema: str, table: str) -> bool:
    with psycopg.connect(postgres_uri) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",)).fetchone()
    return bool(found and found[0])


def events(count: int, users: int = 20, seed: int = 0) -> list[Event]:
    rng = random.Random(seed)
    return [(f"user-{rng.randrange(users):02d}", Decimal(rng.randint(1, 10_000)) / 100) for _ in range(count)]


def expected(produced: list[Event], version: str, multiplier: Decimal = Decimal(1)) -> dict[str, Row]:
    sums: dict[str, Row] = {}
    for user, amount in produced:
        n, revenue, _ = sums.get(user, (0, Decimal(0), version))
        sums[user] = (n + 1, revenue + amount * multiplier, version)
    return sums


def deployment(
    custom: client.CustomObjectsApi,
    namespace: str,
    name: str,
    *,
    bootstrap: str,
    topic: str,
    version: str,
    schema: str,
    table: str | None = None,
    output_topic: str | None = None,
    mode: str = "group-offsets",
    timestamp_ms: int | None = None,
) -> str:
    """A FlinkDeployment the real FKO 1.10 CRD accepts, with the operator's kappa.* configuration; returns
    its consumer group."""
    group = f"kappa.{namespace}.{name}.{uuid.uuid4().hex[:6]}"
    conf = {
        "taskmanager.numberOfTaskSlots": "2",
        "kappa.version": version,
        "kappa.group-id": group,
        "kappa.client-id": group,
        "kappa.bootstrap-servers": bootstrap,
        "kappa.startup-mode": mode,
        "sessionizer.input-topic": topic,
        "sessionizer.schema": schema,
    }
    if timestamp_ms is not None:
        conf["kappa.startup-timestamp"] = str(timestamp_ms)
    if table:
        conf["kappa.output-table"] = table
    if output_topic:
        conf["kappa.output-topic"] = output_topic
    spec = {
        "image": "flink:1.20",
        "flinkVersion": "v1_20",
        "serviceAccount": "flink",
        "flinkConfiguration": conf,
        "jobManager": {"resource": {"memory": "1024m", "cpu": 1}},
        "taskManager": {"resource": {"memory": "1024m", "cpu": 1}},
        "job": {
            "jarURI": "local:///opt/flink/usrlib/kappa-sql-runner.jar",
            "parallelism": 2,
            "upgradeMode": "savepoint",
            "state": "running",
        },
    }
    body = {"apiVersion": FD.api_version, "kind": FD.kind, "metadata": {"name": name}, "spec": spec}
    custom.create_namespaced_custom_object(FD.group, FD.version, namespace, FD.plural, body)
    return group


def set_job_state(custom: client.CustomObjectsApi, namespace: str, name: str, state: str) -> None:
    custom.patch_namespaced_custom_object(
        FD.group,
        FD.version,
        namespace,
        FD.plural,
        name,
        {"spec": {"job": {"state": state}}},
        _content_type="application/merge-patch+json",
    )


# --- stories -----------------------------------------------------------------------------------------------


def test_records_reach_the_table_exactly_once_through_suspend_and_resume(
    pipeline: FakePipeline,
    custom: client.CustomObjectsApi,
    kafka: Kafka,
    schema: str,
    postgres_uri: str,
    namespace: str,
) -> None:
    topic, output = kafka.topic(), kafka.topic()
    first = events(300, seed=1)
    kafka.produce(topic, first)
    group = deployment(
        custom,
        namespace,
        "sessions-v1",
        bootstrap=kafka.bootstrap,
        topic=topic,
        version="v1",
        schema=schema,
        table="sessions_v1",
        output_topic=output,
    )

    wait_until(lambda: pipeline.processed(namespace, "sessions-v1") == 300, timeout=20, what="300 processed")
    assert pipeline.running(namespace, "sessions-v1")
    assert rows(postgres_uri, schema, "sessions_v1") == expected(first, "v1")
    assert kafka.committed(group, topic) == kafka.ends(topic)

    # Suspended: the job stops, and records produced meanwhile wait in Kafka.
    set_job_state(custom, namespace, "sessions-v1", "suspended")
    wait_until(lambda: not pipeline.running(namespace, "sessions-v1"), what="the job to stop")
    second = events(100, seed=2)
    kafka.produce(topic, second)
    time.sleep(1.0)
    assert pipeline.processed(namespace, "sessions-v1") == 300
    assert rows(postgres_uri, schema, "sessions_v1") == expected(first, "v1")
    assert sum(kafka.ends(topic).values()) - sum(kafka.committed(group, topic).values()) == 100

    # Resumed: it goes on from the committed offsets, no record twice, none lost.
    set_job_state(custom, namespace, "sessions-v1", "running")
    wait_until(lambda: pipeline.processed(namespace, "sessions-v1") == 400, timeout=20, what="400 processed")
    assert rows(postgres_uri, schema, "sessions_v1") == expected(first + second, "v1")
    assert kafka.committed(group, topic) == kafka.ends(topic)
    assert pipeline.runs(namespace, "sessions-v1") == 2

    # The output topic got one record per input record; each user's last one holds the table's totals.
    last: dict[str, Row] = {}
    for value in kafka.read_all(output, 400):
        last[value["user"]] = (value["events"], value["revenue"], value["version"])
    assert last == expected(first + second, "v1")
    assert not pipeline.errors


def test_a_version_whose_logic_doubles_revenue_and_one_that_does_not(
    pipeline: FakePipeline,
    custom: client.CustomObjectsApi,
    kafka: Kafka,
    schema: str,
    postgres_uri: str,
    namespace: str,
) -> None:
    topic = kafka.topic()
    produced = events(200, seed=3)
    kafka.produce(topic, produced)
    pipeline.logic(namespace, "v1", multiplier=2.0)
    for version in ("v1", "v2"):
        deployment(
            custom,
            namespace,
            f"sessions-{version}",
            bootstrap=kafka.bootstrap,
            topic=topic,
            version=version,
            schema=schema,
            table=f"sessions_{version}",
            mode="earliest-offset",
        )
    wait_until(
        lambda: [pipeline.processed(namespace, f"sessions-{v}") for v in ("v1", "v2")] == [200, 200],
        timeout=20,
        what="200 processed by each version",
    )
    assert rows(postgres_uri, schema, "sessions_v1") == expected(produced, "v1", Decimal(2))
    assert rows(postgres_uri, schema, "sessions_v2") == expected(produced, "v2")

    # Deleted: its job stops.
    custom.delete_namespaced_custom_object(FD.group, FD.version, namespace, FD.plural, "sessions-v1")
    wait_until(lambda: not pipeline.running(namespace, "sessions-v1"), what="the job to stop")
    assert pipeline.running(namespace, "sessions-v2")
    assert not pipeline.errors


def test_a_crash_loop_stops_and_restarts_the_job_mid_replay_without_loss_or_duplicates(
    pipeline: FakePipeline,
    fko: FakeFlinkOperator,
    custom: client.CustomObjectsApi,
    kafka: Kafka,
    schema: str,
    postgres_uri: str,
    namespace: str,
) -> None:
    topic = kafka.topic()
    produced = events(600, seed=4)
    kafka.produce(topic, produced)
    pipeline.pace(namespace, "sessions-v1", 300)
    group = deployment(
        custom,
        namespace,
        "sessions-v1",
        bootstrap=kafka.bootstrap,
        topic=topic,
        version="v1",
        schema=schema,
        table="sessions_v1",
    )
    wait_until(lambda: pipeline.processed(namespace, "sessions-v1") > 0, what="a first batch")
    assert pipeline.processed(namespace, "sessions-v1") < 600  # paced: mid-replay
    committed = sum(o for o in kafka.committed(group, topic).values() if o > 0)
    assert 0 < committed < 600

    fko.crash_loop("sessions-v1", namespace=namespace, every=0.4, restart_delay=0.3)
    wait_until(lambda: fko.state(namespace, "sessions-v1") == "RESTARTING", what="RESTARTING")
    wait_until(lambda: not pipeline.running(namespace, "sessions-v1"), what="the job to stop")
    wait_until(lambda: pipeline.runs(namespace, "sessions-v1") >= 3, timeout=10, what="two restarts")
    fko.crash_loop("sessions-v1", False, namespace=namespace)
    pipeline.pace(namespace, "sessions-v1", None)

    wait_until(lambda: pipeline.processed(namespace, "sessions-v1") == 600, timeout=20, what="all processed")
    assert rows(postgres_uri, schema, "sessions_v1") == expected(produced, "v1")
    assert kafka.committed(group, topic) == kafka.ends(topic)
    assert not pipeline.errors


def test_startup_modes_timestamp_and_latest_without_committed_offsets(
    pipeline: FakePipeline,
    custom: client.CustomObjectsApi,
    kafka: Kafka,
    schema: str,
    postgres_uri: str,
    namespace: str,
) -> None:
    topic = kafka.topic()
    now = int(time.time() * 1000)
    old, recent, later = events(100, seed=5), events(50, seed=6), events(30, seed=7)
    kafka.produce(topic, old, timestamp_ms=now - 60_000)
    kafka.produce(topic, recent, timestamp_ms=now - 10_000)
    by_time = deployment(
        custom,
        namespace,
        "by-time",
        bootstrap=kafka.bootstrap,
        topic=topic,
        version="v1",
        schema=schema,
        table="by_time",
        mode="timestamp",
        timestamp_ms=now - 30_000,
    )
    latest = deployment(
        custom,
        namespace,
        "latest",
        bootstrap=kafka.bootstrap,
        topic=topic,
        version="v2",
        schema=schema,
        table="latest",
        mode="latest-offset",
    )
    wait_until(lambda: pipeline.processed(namespace, "by-time") == 50, timeout=20, what="50 by time")
    # latest-offset: the starting positions are committed as soon as the job runs, as Flink keeps them.
    wait_until(lambda: kafka.committed(latest, topic) == kafka.ends(topic), what="latest's start committed")
    assert table_exists(postgres_uri, schema, "latest")
    assert rows(postgres_uri, schema, "latest") == {}

    kafka.produce(topic, later)
    wait_until(lambda: pipeline.processed(namespace, "latest") == 30, timeout=20, what="30 latest")
    wait_until(lambda: pipeline.processed(namespace, "by-time") == 80, timeout=20, what="80 by time")
    assert rows(postgres_uri, schema, "by_time") == expected(recent + later, "v1")
    assert rows(postgres_uri, schema, "latest") == expected(later, "v2")
    assert kafka.committed(by_time, topic) == kafka.ends(topic)
    assert not pipeline.errors
