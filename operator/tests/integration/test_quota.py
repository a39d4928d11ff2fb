"""The broker-enforced replay throttle against the real Kafka: a records/s throttle, turned into a consumer
byte-rate quota on a client id, slows that client id, and only that one, down to about the throttle."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from kappa.adapters.quota import ClientQuotas, QuotaError, average_record_bytes, bytes_quota
from tests.integration.testbed import KafkaTestbed

RECORDS = 12_000
VALUE_BYTES = 1024
PARTITIONS = 2
THROTTLE = 500  # records/s: about 24 s for the whole topic, a 12 MiB one


@pytest.fixture
def quotas(kafka_bootstrap: str) -> Iterator[ClientQuotas]:
    client = ClientQuotas(kafka_bootstrap)
    yield client
    client.close()


@pytest.fixture
def topic(kafka: KafkaTestbed) -> Iterator[str]:
    name = kafka.topic(partitions=PARTITIONS)
    yield name
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})  # alive until the deletion is answered
    admin.delete_topics([name])[name].result(10)


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "none"})
    value = os.urandom(VALUE_BYTES)  # random, so that no compression anywhere shrinks it
    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=value, partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(30) == 0


def read_all(bootstrap: str, topic: str, client_id: str, count: int, limit: float = 60) -> tuple[float, int]:
    """Read the whole topic as `client_id`, the partitions assigned directly; (seconds, key + value bytes)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "group.id": f"g-{uuid.uuid4().hex[:10]}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        start = time.monotonic()
        seen = size = 0
        while seen < count and time.monotonic() - start < limit:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    seen += 1
                    size += len(msg.key() or b"") + len(msg.value() or b"")
        elapsed = time.monotonic() - start
    finally:
        consumer.close()
    assert seen == count, f"{client_id} read {seen} of {count} records in {elapsed:.1f}s"
    return elapsed, size


def test_a_consumer_byte_rate_throttles_its_client_id_and_no_other(
    kafka_bootstrap: str, topic: str, quotas: ClientQuotas
) -> None:
    produce(kafka_bootstrap, topic, RECORDS)
    mean = asyncio.run(average_record_bytes(kafka_bootstrap, [topic]))
    assert mean is not None
    assert VALUE_BYTES < mean < VALUE_BYTES + 40
    rate = bytes_quota(THROTTLE, mean)
    throttled = f"replay-{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(quotas.set_consumer_byte_rate(throttled, rate))
        asyncio.run(quotas.set_consumer_byte_rate(throttled, rate))  # idempotent
        assert asyncio.run(quotas.consumer_byte_rate(throttled)) == rate

        free_s, total = read_all(kafka_bootstrap, topic, f"free-{uuid.uuid4().hex[:8]}", RECORDS)
        slow_s, _ = read_all(kafka_bootstrap, topic, throttled, RECORDS)

        print(f"\nquota {rate / 1024:.0f} KiB/s = {THROTTLE}/s x {mean:.1f} B; {total / 2**20:.1f} MiB read")
        for who, took in (("unthrottled", free_s), ("throttled", slow_s)):
            print(f"  {who:11} {took:5.1f}s {total / took / 1024:8.0f} KiB/s {RECORDS / took:7.0f} records/s")
        # The broker averages over its quota window (11 x 1 s) and throttles whole fetches, so the rate is
        # lumpy and the first seconds run ahead; 0.6 of the nominal time leaves room for both.
        assert slow_s >= 0.6 * total / rate
        assert free_s * 5 < slow_s

        asyncio.run(quotas.remove(throttled))
        assert asyncio.run(quotas.consumer_byte_rate(throttled)) is None
        asyncio.run(quotas.remove(throttled))  # no quota, no error
    finally:
        asyncio.run(quotas.remove(throttled))


def test_a_changed_rate_replaces_the_old_one(quotas: ClientQuotas) -> None:
    client_id = f"replay-{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(quotas.set_consumer_byte_rate(client_id, 4096))
        asyncio.run(quotas.set_consumer_byte_rate(client_id, 8192))
        assert asyncio.run(quotas.consumer_byte_rate(client_id)) == 8192
        assert asyncio.run(quotas.consumer_byte_rate(f"other-{client_id}")) is None
    finally:
        asyncio.run(quotas.remove(client_id))


def test_record_size_of_an_empty_topic_is_unknown_and_of_a_missing_one_an_error(
    kafka_bootstrap: str, topic: str
) -> None:
    assert asyncio.run(average_record_bytes(kafka_bootstrap, [topic])) is None
    with pytest.raises(QuotaError, match="cannot size the records of topic"):
        asyncio.run(average_record_bytes(kafka_bootstrap, [f"missing-{uuid.uuid4().hex[:8]}"]))
