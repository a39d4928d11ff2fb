"""The shop of the ReplayRun and MaterializedView stories: clicks in a topic, the sessionizer StreamJob whose
v1 has a bug that doubles revenue, and the `sessions` view in PostgreSQL that readers query."""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.pipeline import FakePipeline
from tests.integration.testbed import KafkaTestbed, Kubectl, OperatorProcess

WINDOW = 20  # seconds: spec.rollbackWindow of the runs below
USERS = [f"u{i:02d}" for i in range(20)]


@dataclass
class Shop:
    """One test's world: an input topic with events, a schema, and the sessionizer serving `sessions`."""

    kubectl: Kubectl
    bootstrap: str
    postgres_uri: str
    topic: str
    schema: str
    produced: list[tuple[str, int]] = field(default_factory=list)

    def produce(self, count: int) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap})
        for _ in range(count):
            user, amount = random.choice(USERS), random.randint(1, 100)
            producer.produce(self.topic, key=user, value=json.dumps({"user": user, "amount": amount}))
            self.produced.append((user, amount))
        producer.flush(30)

    def truth(self, multiplier: int = 1) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for user, amount in self.produced:
            events, revenue = out.get(user, (0, 0))
            out[user] = (events + 1, revenue + amount * multiplier)
        return out

    def read_view(self) -> tuple[set[str], dict[str, tuple[int, int]]]:
        with psycopg.connect(self.postgres_uri, autocommit=True) as conn:
            rows = conn.execute(
                f"SELECT user_id, events, revenue, version FROM {self.schema}.sessions"
            ).fetchall()
        return {r[3] for r in rows}, {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def view_table(self) -> str | None:
        with psycopg.connect(self.postgres_uri, autocommit=True) as conn:
            row = conn.execute(
                "SELECT table_name FROM information_schema.view_table_usage "
                "WHERE view_schema = %s AND view_name = 'sessions'",
                (self.schema,),
            ).fetchone()
        return str(row[0]) if row else None

    def table_exists(self, table: str) -> bool:
        with psycopg.connect(self.postgres_uri, autocommit=True) as conn:
            return (
                conn.execute(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                    (self.schema, table),
                ).fetchone()
                is not None
            )

    def groups(self) -> set[str]:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        listed = admin.list_consumer_groups(request_timeout=10).result()
        return {g.group_id for g in listed.valid}


def streamjob(shop: Shop, version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": "sessionizer"},
        "spec": {
            "version": version,
            "source": {
                "kafka": {"bootstrapServers": shop.bootstrap},
                "topics": [shop.topic],
                "startingPosition": {"earliest": True},
            },
            "output": {"table": {"base": "sessions"}, "view": "sessions"},
            "flink": {
                "image": "kappa-dev/flink-sql-runner:1.20",
                "flinkVersion": "v1_20",
                "sql": ["INSERT INTO ${KAPPA_OUTPUT_TABLE} SELECT user, count(*), sum(amount) FROM clicks"],
                "flinkConfiguration": {
                    "sessionizer.input-topic": shop.topic,
                    "sessionizer.schema": shop.schema,
                    "kubernetes.operator.periodic.checkpoint.interval": "1s",
                },
            },
            "upgrade": {"readinessTimeout": "30s", "stableFor": "2s", "rollbackWindow": "20s"},
        },
    }


def view(shop: Shop) -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "MaterializedView",
        "metadata": {"name": "sessions"},
        "spec": {
            "backend": {
                "type": "postgres",
                "postgres": {"secretRef": {"name": "serving-db"}, "schema": shop.schema, "view": "sessions"},
            }
        },
    }


def replayrun(name: str, version: str = "v2", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "ReplayRun",
        "metadata": {"name": name},
        "spec": {
            "jobRef": {"name": "sessionizer"},
            "version": version,
            "from": {"earliest": True},
            "approval": "Automatic",
            "catchUp": {"maxLagRecords": 10, "stableFor": "2s", "timeout": "2m"},
            "rollbackWindow": f"{WINDOW}s",
            **spec,
        },
    }


def phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


def in_phase(*phases: str) -> Any:
    return lambda obj: phase(obj) in phases


def wait_run(kubectl: Kubectl, name: str, *phases: str, timeout: float = 120) -> dict[str, Any]:
    return kubectl.wait_for("rr", name, in_phase(*phases), timeout=timeout, what=f"{name} in {phases}")


def reasons(kubectl: Kubectl, name: str) -> list[str]:
    out = json.loads(
        kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
    )
    return [e["reason"] for e in out["items"]]


def flinkdeployments(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    out = json.loads(kubectl("get", "flinkdeployments", "-o", "json"))
    return {fd["metadata"]["name"]: fd for fd in out["items"]}


@pytest.fixture
def shop(
    kappa_operator: OperatorProcess,
    kubectl: Kubectl,
    kafka_bootstrap: str,
    kafka: KafkaTestbed,
    postgres_uri: str,
    fko: FakeFlinkOperator,
    pipeline: FakePipeline,
) -> Iterator[Shop]:
    """Events in a topic; v1 (whose bug doubles revenue) live and serving the `sessions` view."""
    schema = f"s_{uuid.uuid4().hex[:8]}"
    topic = kafka.topic(partitions=3)
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    shop = Shop(kubectl, kafka_bootstrap, postgres_uri, topic, schema)
    shop.produce(600)
    namespace = str(kubectl.namespace)
    pipeline.logic(namespace, "v1", multiplier=2.0)  # the bug
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "serving-db"},
            "data": {"uri": base64.b64encode(postgres_uri.encode()).decode()},
        }
    )
    kubectl.apply(streamjob(shop))
    kubectl.apply(view(shop))
    kubectl.wait_for(
        "mv",
        "sessions",
        lambda o: (o.get("status") or {}).get("activeVersion") == "v1",
        timeout=90,
        what="the view serving v1",
    )
    # v1 has read everything produced so far: the view answers with v1's (inflated) numbers.
    deadline = time.monotonic() + 60
    while shop.read_view()[1] != shop.truth(2) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert shop.read_view() == ({"v1"}, shop.truth(2))
    yield shop
    # The jobs stop before their schema goes: delete the job (its final savepoint suspends every version).
    kubectl.run("delete", "rr", "--all", "--wait=false", check=False)
    kubectl.run("delete", "sj", "--all", "--wait=false", check=False)
    deadline = time.monotonic() + 60
    while pipeline.active(namespace) and time.monotonic() < deadline:
        time.sleep(0.2)
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
