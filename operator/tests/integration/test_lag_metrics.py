"""On-call engineers see a job's consumer lag in Prometheus, per partition and in total."""

from __future__ import annotations

import time
from typing import Any

from kappa.render.names import consumer_group
from tests.doubles.fko import FakeFlinkOperator
from tests.integration.testbed import KafkaTestbed, Kubectl, OperatorProcess


def clicks_job(kafka: KafkaTestbed, topic: str) -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": "clicks-job"},
        "spec": {
            "version": "v1",
            "source": {"kafka": {"bootstrapServers": kafka.bootstrap}, "topics": [topic]},
            "output": {"topic": {"base": f"{topic}-out"}},
            "flink": {
                "image": "img",
                "flinkVersion": "v1_20",
                "sql": ["SELECT 1"],
                # FKO reports checkpoints it triggers; the default interval (a fifth of readinessTimeout,
                # 1 min here) is longer than this test waits.
                "flinkConfiguration": {"kubernetes.operator.periodic.checkpoint.interval": "1s"},
            },
            "upgrade": {"stableFor": "1s"},
        },
    }


def test_a_streamjobs_group_lag_is_exported_as_gauges(
    kappa_operator: OperatorProcess, kubectl: Kubectl, kafka: KafkaTestbed, fko: FakeFlinkOperator
) -> None:
    topic = kafka.topic(partitions=2)
    kafka.produce(topic, [(p, int(time.time() * 1000)) for p in range(2) for _ in range(12)])
    group = consumer_group(str(kubectl.namespace), "clicks-job", "v1")
    # What a running v1 would have committed on its last checkpoint.
    kafka.run(kafka.admin.seed_group(group, {(topic, 0): 5, (topic, 1): 12}))

    kubectl.apply(clicks_job(kafka, topic))

    labels = {"namespace": str(kubectl.namespace), "job": "clicks-job", "version": "v1", "group": group}
    deadline = time.monotonic() + 30
    total = None
    while time.monotonic() < deadline:
        total = kappa_operator.metric("kappa_consumer_group_lag_records", **labels)
        if total is not None:
            break
        time.sleep(0.5)
    assert total == 7
    assert kappa_operator.metric("kappa_consumer_lag_records", **labels, topic=topic, partition="0") == 7
    assert kappa_operator.metric("kappa_consumer_lag_records", **labels, topic=topic, partition="1") == 0
    # Burrow's evaluation: OK on the first sample; from the second on, the committed offset has not moved
    # while lagging (no consumer runs here), which is STALL. Which one a scrape shows depends on how many
    # polls (1 s apart) came before it, under load more than one.
    assert kappa_operator.metric("kappa_consumer_group_lag_status", **labels) in (0, 3)
    assert kappa_operator.metric("kappa_consumer_fell_off_retention_partitions", **labels) == 0

    # And in the Lag column of `kubectl get sj`, once v1 is the active version.
    kubectl.wait_for("sj", "clicks-job", lambda o: o.get("status", {}).get("lag") == 7, what="status.lag")
    row = kubectl("get", "sj", "clicks-job", "--no-headers").split()
    assert row[1:5] == ["v1", "v1", "Running", "7"]


def test_a_streamjob_deleted_before_its_version_ran_leaves_no_lag_series(
    kappa_operator: OperatorProcess, kubectl: Kubectl, kafka: KafkaTestbed, fko: FakeFlinkOperator
) -> None:
    """Its group stayed in the lag poll, and its series on /metrics, for as long as the operator ran."""
    topic = kafka.topic(partitions=1)
    kafka.produce(topic, [(0, int(time.time() * 1000)) for _ in range(4)])
    ns = str(kubectl.namespace)
    group = consumer_group(ns, "clicks-job", "v1")
    kafka.run(kafka.admin.seed_group(group, {(topic, 0): 1}))
    fko.start_delay("clicks-job-v1", 300, namespace=ns)  # v1 never becomes active
    kubectl.apply(clicks_job(kafka, topic))
    labels = {"namespace": ns, "job": "clicks-job", "version": "v1", "group": group}
    deadline = time.monotonic() + 30
    while kappa_operator.metric("kappa_consumer_group_lag_records", **labels) != 3:
        assert time.monotonic() < deadline, "v1's group lag never exported while it started"
        time.sleep(0.5)

    kubectl("delete", "sj", "clicks-job", "--wait=true", "--timeout=60s")
    # Gone with the object, and a lag poll in flight at the deletion does not bring them back.
    for _ in range(10):
        assert kappa_operator.metric("kappa_consumer_group_lag_records", **labels) is None
        time.sleep(1)
    assert kappa_operator.metric("kappa_consumer_lag_records", **labels, topic=topic, partition="0") is None
