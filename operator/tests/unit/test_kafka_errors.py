"""What a Kafka client error means to a controller (adapters/kafka/errors.py): an outage when the cluster did
not answer or the error is transient, said with what to tell the user; nothing for a refusal, which the
controller lets through."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from kappa.adapters.kafka.errors import KafkaClientError, kafka_outage
from kappa.adapters.kafka.health import cluster_health


def _admin(bootstrap: str) -> Any:
    """What kafka_outage reads of a KafkaAdmin: its cluster's health and its bootstrap servers."""
    return SimpleNamespace(health=cluster_health(bootstrap), bootstrap_servers=bootstrap)


def test_an_unreachable_cluster_is_an_outage_whatever_the_error() -> None:
    admin = _admin("kafka-down.test:9092")
    admin.health.observe(False, "connection refused")
    refused = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    assert kafka_outage(refused, admin) == "Kafka at kafka-down.test:9092 unreachable: connection refused"


def test_a_transient_error_is_an_outage_and_a_refusal_is_not() -> None:
    admin = _admin("kafka-up.test:9092")
    admin.health.observe(True)
    transient = KafkaException(KafkaError(KafkaError._TRANSPORT, retriable=True))
    assert kafka_outage(transient, admin) == (
        "Kafka at kafka-up.test:9092 did not answer: Local: Broker transport failure"
    )
    assert kafka_outage(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), admin) is None
    assert kafka_outage(KafkaException("no KafkaError inside"), admin) is None


def test_the_controllers_catch_what_the_client_raises() -> None:
    assert issubclass(KafkaException, KafkaClientError)
