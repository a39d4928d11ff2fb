"""MaterializedView stories: a GitOps pin rolls readers back, a ConfigMap pointer follows a replay for Kafka
readers, and a view whose Secret is missing says so without naming any secret value."""

from __future__ import annotations

import json
import uuid
from typing import Any

from confluent_kafka import Producer

from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.pipeline import FakePipeline
from tests.integration.shop import Shop, replayrun, wait_run
from tests.integration.testbed import KafkaTestbed, Kubectl, OperatorProcess, conditions


def test_pinning_spec_active_version_switches_readers_back(shop: Shop, kubectl: Kubectl) -> None:
    kubectl.apply(replayrun("fix-revenue"))
    wait_run(kubectl, "fix-revenue", "Observing", "Succeeded", timeout=120)
    assert shop.view_table() == "sessions_v2"
    kubectl("patch", "mv", "sessions", "--type=merge", "-p", '{"spec":{"activeVersion":"v1"}}')
    pinned = kubectl.wait_for(
        "mv",
        "sessions",
        lambda o: conditions(o).get("Ready", {}).get("reason") == "Pinned",
        timeout=30,
        what="pinned to v1",
    )
    assert (pinned["status"]["activeVersion"], pinned["status"]["previousVersion"]) == ("v1", "v2")
    assert shop.view_table() == "sessions_v1"
    assert shop.read_view()[0] == {"v1"}
    states = {v["name"]: v["state"] for v in pinned["status"]["versions"]}
    assert states == {"v1": "Active", "v2": "Previous"}
    # A run cannot cut over a pinned view: it fails preflight and creates nothing.
    kubectl.apply(replayrun("again", version="v3"))
    failed = wait_run(kubectl, "again", "Failed", timeout=60)
    assert "pins spec.activeVersion v1" in conditions(failed)["Stalled"]["message"]


def test_a_configmap_pointer_follows_a_replay_for_kafka_readers(
    kappa_operator: OperatorProcess,
    kubectl: Kubectl,
    kafka: KafkaTestbed,
    fko: FakeFlinkOperator,
    pipeline: FakePipeline,
) -> None:
    topic = kafka.topic(partitions=2)
    base = f"sessions-{uuid.uuid4().hex[:6]}"
    kafka.run(kafka.admin.ensure_topic(f"{base}.v1", partitions=1))
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    for i in range(200):
        producer.produce(topic, key=f"u{i % 10}", value=json.dumps({"user": f"u{i % 10}", "amount": 1}))
    producer.flush(30)
    schema = "public"
    job: dict[str, Any] = {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": "sessionizer"},
        "spec": {
            "version": "v1",
            "source": {
                "kafka": {"bootstrapServers": kafka.bootstrap},
                "topics": [topic],
                "startingPosition": {"earliest": True},
            },
            "output": {"topic": {"base": base}, "view": "sessions-pointer"},
            "flink": {
                "image": "kappa-dev/flink-sql-runner:1.20",
                "flinkVersion": "v1_20",
                "sql": ["INSERT INTO `${KAPPA_OUTPUT_TOPIC}` SELECT * FROM clicks"],
                "flinkConfiguration": {
                    "sessionizer.input-topic": topic,
                    "sessionizer.schema": schema,
                    "kubernetes.operator.periodic.checkpoint.interval": "1s",
                },
            },
        },
    }
    kubectl.apply(job)
    kubectl.apply(
        {
            "apiVersion": "kappa.dev/v1alpha1",
            "kind": "MaterializedView",
            "metadata": {"name": "sessions-pointer"},
            "spec": {"backend": {"type": "configMap", "configMap": {"name": "sessions-active"}}},
        }
    )
    kubectl.wait_for(
        "mv",
        "sessions-pointer",
        lambda o: (o.get("status") or {}).get("activeVersion") == "v1",
        timeout=60,
        what="pointer at v1",
    )
    assert kubectl.get("configmap", "sessions-active")["data"] == {"activeTopic": f"{base}.v1"}
    kubectl.apply(replayrun("replay-topic"))
    done = wait_run(kubectl, "replay-topic", "Observing", "Succeeded", timeout=120)
    assert {c["name"]: c["passed"] for c in done["status"]["validation"]} == {"CountRatio": True}
    assert kubectl.get("configmap", "sessions-active")["data"] == {"activeTopic": f"{base}.v2"}
    view = kubectl.wait_for(
        "mv",
        "sessions-pointer",
        lambda o: o["status"].get("activeVersion") == "v2",
        timeout=30,
        what="view status at v2",
    )
    assert view["status"]["previousVersion"] == "v1"


def test_a_view_whose_secret_is_missing_is_stalled_naming_the_field(
    kappa_operator: OperatorProcess, kubectl: Kubectl
) -> None:
    kubectl.apply(
        {
            "apiVersion": "kappa.dev/v1alpha1",
            "kind": "StreamJob",
            "metadata": {"name": "orders"},
            "spec": {
                "version": "v1",
                "source": {"kafka": {"bootstrapServers": "127.0.0.1:1"}, "topics": ["orders"]},
                "output": {"table": {"base": "orders"}, "view": "orders"},
                "flink": {"image": "img:1", "flinkVersion": "v1_20", "sql": ["SELECT 1"]},
            },
        }
    )
    kubectl.apply(
        {
            "apiVersion": "kappa.dev/v1alpha1",
            "kind": "MaterializedView",
            "metadata": {"name": "orders"},
            "spec": {
                "backend": {
                    "type": "postgres",
                    "postgres": {"secretRef": {"name": "no-such-secret"}, "view": "orders"},
                }
            },
        }
    )
    stalled = kubectl.wait_for(
        "mv",
        "orders",
        lambda o: conditions(o).get("Stalled", {}).get("status") == "True",
        timeout=30,
        what="Stalled",
    )
    cond = conditions(stalled)["Stalled"]
    assert cond["reason"] == "BackendUnavailable"
    assert "spec.backend.postgres.secretRef" in cond["message"] and "no-such-secret" in cond["message"]
