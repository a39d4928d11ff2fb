"""Client quotas: the broker-enforced throttle of a replay, as a consumer byte rate on the replay's client id,
and the record size that turns a records/s throttle into that byte rate.

confluent-kafka has no AlterClientQuotas, so the quota calls go through kafka-python; both libraries block,
and every blocking call runs in a worker thread. Nothing here blocks the event loop.

A cluster that does not answer is reported through the Kafka adapter's per-cluster Reachability (one log
line when it goes down, one when it is back). kafka-python's own `kafka` logger, which logs every connection
attempt at ERROR, is quieted by the CLI's logging setup; the confluent-kafka consumer logs like the adapter's.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import kafka.errors as kafka_errors  # type: ignore[import-untyped]
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from kafka.protocol.admin import (  # type: ignore[import-untyped]
    AlterClientQuotasRequest,
    DescribeClientQuotasRequest,
)

from kappa.adapters.kafka.connection import KafkaConnection, pure_admin_client, quiet_client_config
from kappa.adapters.kafka.health import cluster_health
from kappa.adapters.retry import retrying, retrying_blocking

CLIENT_ID = "client-id"
"""The quota entity type: Flink's Kafka source sends the replay's group id as its client id."""

CONSUMER_BYTE_RATE = "consumer_byte_rate"

MIN_QUOTA_BYTES = 1024
"""The smallest quota we set, as the API's floor for bytesPerSecond."""

RECORD_OVERHEAD_BYTES = 16
"""Bytes a v2 record takes beyond its key, value and headers: about 10 of varint framing (length, attributes,
timestamp and offset deltas, key/value lengths, header count) and a share of its batch's 61-byte header."""

_EXACT = 0  # DescribeClientQuotas match type 0: the entity name equals `match`

T = TypeVar("T")


# kafka-python's errors that say the cluster did not answer: a refused connection, a bootstrap timed out.
_UNREACHABLE = (kafka_errors.KafkaConnectionError, kafka_errors.KafkaTimeoutError)


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, kafka_errors.KafkaError) and bool(exc.retriable)


class QuotaError(Exception):
    """A quota could not be set, read or sized; the message is fit for a condition."""


def bytes_quota(records_per_second: int, average_record_bytes: float, burst: int | None = None) -> int:
    """The consumer byte rate that enforces a records/s throttle.

    Kafka quotas are in bytes per second, so a records/s throttle is enforced as records/s times the mean
    record size measured on the input (see `average_record_bytes()`), rounded up, and never below 1024 B/s.

    `burst` (records, at least the rate) does not raise the quota: a quota is one number, and raising it to
    the burst would raise the sustained rate too. The broker already grants a burst of its own, since it
    averages the rate over its sample windows (quota.window.num x quota.window.size.seconds, 11 x 1 s by
    default): a reader may take several seconds' worth at once before it is held back.
    """
    if records_per_second < 1:
        raise ValueError(f"records_per_second must be >= 1, not {records_per_second}")
    if not average_record_bytes > 0:
        raise ValueError(f"average_record_bytes must be > 0, not {average_record_bytes}")
    if burst is not None and burst < records_per_second:
        raise ValueError(f"burst ({burst}) must be >= records_per_second ({records_per_second})")
    return max(MIN_QUOTA_BYTES, math.ceil(records_per_second * average_record_bytes))


def _send(admin: Any, request: Any) -> Any:
    """Send one request on the admin client's connections and return the response; blocks.

    kafka-python 3 has the ClientQuotas messages but no admin method for them. Its own admin methods send
    through the private connection manager exactly like this; it is the only way to send a request there.
    Kept to this one function, so that a kafka-python that adds the methods, or renames `_manager`, changes
    one place.
    """
    manager = admin._manager

    async def send() -> Any:
        return await manager.send(request)

    return manager.run(send)


def _raise_for(error_code: int, message: str | None) -> None:
    if error_code:
        # The kafka-python class of the error (retriable or not), carrying the broker's own words.
        raise kafka_errors.for_code(error_code)(message or "no message from the broker")


class ClientQuotas:
    """Consumer byte-rate quotas on client ids, on one kafka-python admin client per Kafka cluster."""

    def __init__(
        self,
        connection: KafkaConnection | str,
        *,
        client_id: str = "kappa-operator-quotas",
        timeout: float = 30.0,
    ) -> None:
        self.connection = KafkaConnection.of(connection)
        self.bootstrap_servers = self.connection.bootstrap
        self.timeout = timeout
        self._client_id = client_id
        self._admin: Any = None
        # Worker threads may race to create the client; one must win.
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._admin is None:
                # The constructor connects and fetches metadata, so it is created lazily, in a worker thread;
                # one that cannot connect leaves no IO thread behind (pure_admin_client).
                self._admin = pure_admin_client(
                    self.connection, client_id=self._client_id, timeout=self.timeout
                )
            return self._admin

    async def _call(self, what: str, blocking: Callable[[], T]) -> T:
        """Run a blocking call in a worker thread; retriable errors are retried with backoff until the
        timeout. Both requests are idempotent (set a value, remove a key), so a retry cannot do harm."""
        health = cluster_health(self.connection)
        try:
            result: T = await retrying(_retriable, within=self.timeout)(asyncio.to_thread, blocking)
        except kafka_errors.KafkaError as exc:
            if isinstance(exc, _UNREACHABLE):
                health.observe(False, str(exc))
            raise QuotaError(f"{what} failed: {exc}") from exc
        health.observe(True)
        return result

    # -- the quota ------------------------------------------------------------------------------------

    async def set_consumer_byte_rate(self, client_id: str, bytes_per_second: int) -> None:
        """Throttle every consumer with this client id to `bytes_per_second` (per broker). Idempotent."""
        _check_client_id(client_id)
        if bytes_per_second < 1:
            raise ValueError(f"bytes_per_second must be >= 1, not {bytes_per_second}")
        rate = float(bytes_per_second)
        # Reconcilers set the quota on every pass; an unchanged quota is not written again, so the
        # controller's metadata log does not grow by one record per pass.
        if await self.consumer_byte_rate(client_id) == rate:
            return
        await self._call(
            f"setting {CONSUMER_BYTE_RATE} of client id {client_id}",
            lambda: self._alter_blocking(client_id, rate),
        )
        await self._until_applied(client_id, rate)

    async def remove(self, client_id: str) -> None:
        """Remove the client id's consumer byte rate; nothing to do when it has none."""
        _check_client_id(client_id)
        if await self.consumer_byte_rate(client_id) is None:
            return
        await self._call(
            f"removing {CONSUMER_BYTE_RATE} of client id {client_id}",
            lambda: self._alter_blocking(client_id, None),
        )
        await self._until_applied(client_id, None)

    async def consumer_byte_rate(self, client_id: str) -> float | None:
        """The client id's own consumer byte rate; None when it has none (defaults are not looked at)."""
        _check_client_id(client_id)
        return await self._call(
            f"describing the quotas of client id {client_id}", lambda: self._describe_blocking(client_id)
        )

    async def _until_applied(self, client_id: str, expected: float | None) -> None:
        """Wait until the broker answering us shows the change.

        Under KRaft the controller acknowledges a quota change once it is in the metadata log; brokers apply
        it when they replay that log, a moment later (on the test bed the first change after a broker start
        was not yet visible to the next describe). Describe answers from the broker's metadata, the same that
        feeds its quota managers, so once it shows the change that broker enforces it.
        """
        deadline = time.monotonic() + self.timeout
        while (current := await self.consumer_byte_rate(client_id)) != expected:
            if time.monotonic() > deadline:
                raise QuotaError(
                    f"the controller accepted {CONSUMER_BYTE_RATE}={expected} for client id {client_id}, "
                    f"but after {self.timeout:.0f}s the broker still shows {current}"
                )
            await asyncio.sleep(0.05)

    def _alter_blocking(self, client_id: str, rate: float | None) -> None:
        entry = AlterClientQuotasRequest.EntryData
        request = AlterClientQuotasRequest(
            entries=[
                entry(
                    entity=[entry.EntityData(entity_type=CLIENT_ID, entity_name=client_id)],
                    ops=[
                        entry.OpData(
                            key=CONSUMER_BYTE_RATE,
                            value=0.0 if rate is None else rate,  # ignored by the broker on remove
                            remove=rate is None,
                        )
                    ],
                )
            ],
            validate_only=False,
        )
        response = _send(self._client(), request)
        for result in response.entries:
            _raise_for(result.error_code, result.error_message)

    def _describe_blocking(self, client_id: str) -> float | None:
        component = DescribeClientQuotasRequest.ComponentData(
            entity_type=CLIENT_ID, match_type=_EXACT, match=client_id
        )
        # strict: only the entity that is this client id alone, not (user, client id) pairs that contain it.
        request = DescribeClientQuotasRequest(components=[component], strict=True)
        response = _send(self._client(), request)
        _raise_for(response.error_code, response.error_message)
        for entry in response.entries or []:
            if [(e.entity_type, e.entity_name) for e in entry.entity] != [(CLIENT_ID, client_id)]:
                continue
            for value in entry.values:
                if value.key == CONSUMER_BYTE_RATE:
                    return float(value.value)
        return None

    def close(self) -> None:
        """Close the admin client's connections and stop its IO thread (a join of a few milliseconds)."""
        with self._lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()


def _check_client_id(client_id: str) -> None:
    # An empty name would not be an error for the broker: it would be some other entity than the caller meant.
    if not client_id:
        raise ValueError("client_id must not be empty")


# -- the record size ----------------------------------------------------------------------------------


def _record_bytes(msg: Message) -> int:
    headers = msg.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    header_bytes = sum(len(k) + len(v or b"") for k, v in pairs)
    return len(msg.key() or b"") + len(msg.value() or b"") + header_bytes + RECORD_OVERHEAD_BYTES


# Not flagged retriable by librdkafka on a watermark query, yet they pass once the consumer has new metadata.
_LEADER_MOVING = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TIMED_OUT}


def _leader_moving(exc: BaseException) -> bool:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in _LEADER_MOVING)


def _watermarks(consumer: Consumer, topic: str, partition: int, deadline: float) -> tuple[int, int]:
    """Low and high watermark. A new topic's leader reaches the consumer's metadata a moment after the topic
    exists (NOT_LEADER_FOR_PARTITION meanwhile): such errors are retried until the deadline."""

    def once() -> tuple[int, int]:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=max(0.1, deadline - time.monotonic())
        )
        return low, high

    return retrying_blocking(_leader_moving, within=max(0.0, deadline - time.monotonic()))(once)


def _sizes_of(consumer: Consumer, topic: str, sample: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None:
        reason = metadata.error.str() if metadata is not None else "no metadata"
        raise QuotaError(f"cannot size the records of topic {topic}: {reason}")
    ends: dict[int, int] = {}
    starts: list[TopicPartition] = []
    for partition in sorted(metadata.partitions):
        low, high = _watermarks(consumer, topic, partition, deadline)
        if high > low:
            ends[partition] = high
            starts.append(TopicPartition(topic, partition, low))
    sizes: list[int] = []
    if not starts:
        return sizes
    consumer.assign(starts)
    try:
        while len(sizes) < sample and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                sizes.append(_record_bytes(msg))
                continue
            # Nothing came: done when every partition is read to its end (which may be a transaction
            # marker, so the last offset is not always a record).
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            if all(tp.offset >= ends[tp.partition] for tp in positions):
                break
    finally:
        consumer.unassign()
    return sizes


def _sample_sizes_blocking(
    connection: KafkaConnection, topics: list[str], sample: int, timeout: float
) -> list[int]:
    consumer = Consumer(
        {
            **connection.librdkafka(),
            "client.id": "kappa-operator-sizer",
            # A group id librdkafka wants; the partitions are assigned directly and nothing is ever committed.
            "group.id": f"kappa-sizer-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # Aborted records count against a quota too: the broker sends them and the reader drops them.
            "isolation.level": "read_uncommitted",
            "auto.offset.reset": "earliest",
            **quiet_client_config(connection.bootstrap),
        }
    )
    sizes: list[int] = []
    try:
        for topic in topics:
            try:
                sizes += _sizes_of(consumer, topic, sample, timeout)
            except KafkaException as exc:
                reason = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else exc
                raise QuotaError(f"sizing the records of topic {topic} failed: {reason}") from exc
        return sizes
    finally:
        consumer.close()


async def average_record_bytes(
    connection: KafkaConnection | str,
    topics: Iterable[str],
    sample: int = 200,
    *,
    timeout: float = 10.0,
) -> float | None:
    """Mean bytes per record over up to `sample` records from the start of each topic; None when all are
    empty.

    A record's bytes are its key, value and headers plus the v2 format's per-record overhead. They are
    uncompressed sizes, while a quota counts the (compressed) bytes the broker sends: on a compressed topic
    the quota from bytes_quota() comes out high, so the replay reads faster than asked, never slower.
    """
    if sample < 1:
        raise ValueError(f"sample must be >= 1, not {sample}")
    names = sorted(set(topics))
    sizes = await asyncio.to_thread(
        _sample_sizes_blocking, KafkaConnection.of(connection), names, sample, timeout
    )
    return sum(sizes) / len(sizes) if sizes else None
