"""`FakeStrimzi`: Strimzi's topic operator in memory, as the double of tests/doubles/strimzi.py writes it (its
`BatchingTopicController.updateStatus`): each `step()` creates or grows every KafkaTopic's topic in a
`FakeKafka` (`spec.topicName`, else the object's name; its partitions and config) and writes the status
`{conditions: [Ready=True], observedGeneration, topicName}`. `kafka_cluster` puts the `Kafka` resource a
`spec.source.kafka.clusterRef` names, with the listener its status reports.

Not modelled: refusals (fewer partitions, a changed topicName: the double's KafkaError), pausing, deletion of
topics with their KafkaTopic, KafkaUsers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.fakes.kafka import FakeKafka
from tests.fakes.kube import STRIMZI, FakeKube


class FakeStrimzi:
    def __init__(self, kube: FakeKube, kafka: FakeKafka) -> None:
        self.kube = kube
        self.kafka = kafka
        kube.serve_strimzi()

    def kafka_cluster(self, namespace: str, name: str, bootstrap: str, listener: str = "plain") -> None:
        """A Strimzi `Kafka` whose status reports one plain listener at `bootstrap`."""
        self.kube.put(
            {
                "apiVersion": STRIMZI,
                "kind": "Kafka",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "kafka": {
                        "listeners": [{"name": listener, "port": 9092, "type": "internal", "tls": False}]
                    }
                },
            }
        )
        found = self.kube.object(STRIMZI, "Kafka", namespace, name)
        assert found is not None
        self.kube.replace_status(found, {"listeners": [{"name": listener, "bootstrapServers": bootstrap}]})

    async def step(self) -> None:
        """One pass of the topic operator over every KafkaTopic."""
        for obj in self.kube.objects(STRIMZI, "KafkaTopic"):
            spec: dict[str, Any] = obj.get("spec") or {}
            topic = spec.get("topicName") or obj["metadata"]["name"]
            config = {str(k): str(v) for k, v in (spec.get("config") or {}).items()}
            await self.kafka.admin("strimzi").ensure_topic(
                topic, partitions=int(spec.get("partitions") or 1), config=config
            )
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ready = {"type": "Ready", "status": "True", "lastTransitionTime": stamp}
            self.kube.replace_status(
                obj,
                {
                    "conditions": [ready],
                    "observedGeneration": obj["metadata"]["generation"],
                    "topicName": topic,
                },
            )
