"""What a Kafka client error means to a controller, so that no controller imports confluent-kafka itself:
`KafkaClientError`, the error the client raises where the adapter lets it through (a call made while the
cluster went away), and `kafka_outage`, which tells an outage (the cluster did not answer, or a transient
error the adapter retried until its deadline) from a refusal."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from kappa.adapters.kafka.admin import KafkaAdmin

KafkaClientError = KafkaException
"""confluent-kafka's exception, as the controllers catch it."""


def kafka_outage(exc: BaseException, admin: KafkaAdmin) -> str | None:
    """What to say when `exc` failed because Kafka did not answer ("Kafka at X unreachable: ..."); None when
    it was no outage (a refusal, a bug), which the caller lets through."""
    down = admin.health.unreachable  # a Kafka call that failed because the cluster did not answer
    if down:
        return down
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if error is not None and error.retriable():  # transient, and retried by the adapter until its deadline
        return f"Kafka at {admin.bootstrap_servers} did not answer: {error.str()}"
    return None
