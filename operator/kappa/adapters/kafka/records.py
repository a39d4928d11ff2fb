"""Reads through consumers of the operator's own rather than the admin API:

- `OffsetReader`: offsets by position or time (ListOffsets) for thousands of partitions at a time, without
  the admin API's Python future per partition;
- the offsets of the data records a transactional reader gets in a range (`record_offsets_blocking`: the
  recount in which transaction markers and aborted records do not count), and the timestamp of the first
  readable record at an offset (`record_timestamps_blocking`), with a read_committed `probe_consumer`.

They block: `KafkaAdmin` runs them in worker threads."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kappa.adapters.kafka.connection import quiet_client_config
from kappa.adapters.kafka.values import KafkaAdapterError, Partition, names_of


def probe_consumer(conf: Mapping[str, Any], *, read_committed: bool = True) -> Consumer:
    """A consumer in a group of its own that commits nothing (read_committed unless told), for probes."""
    return Consumer(
        {
            **conf,
            **quiet_client_config(str(conf["bootstrap.servers"])),
            "group.id": f"kappa-probe-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "auto.offset.reset": "error",  # never silently jump: a probe past retention must fail loudly
        }
    )


EARLIEST, LATEST = -2, -1
"""ListOffsets' own timestamps for the log start and the end (the last stable offset under read_committed)."""


class OffsetReader:
    """ListOffsets for many partitions: a consumer's `offsets_for_times`, which sends one request per leader
    and answers in one list, in chunks of `chunk` partitions.

    Why not the AdminClient's `list_offsets`: it makes a Python future per partition, and librdkafka matches
    each answer to its request by a linear search, so a round grows with the square of the partitions: about
    a second of CPU at 10,000, where chunks of 500 take about 70 ms. The consumers live as long as the
    adapter (one read_committed, one read_uncommitted, made when first needed). Thread-safe: `close()` while
    a read is in flight leaves the consumer to be closed by the last reader."""

    def __init__(self, conf: Mapping[str, Any], *, timeout: float, chunk: int = 500) -> None:
        self.conf = dict(conf)
        self.timeout = timeout
        self.chunk = chunk
        self._consumers: dict[bool, Consumer] = {}
        self._lock = threading.Lock()
        self._readers = 0
        self._closed = False

    def read(self, specs: Mapping[Partition, int], *, read_committed: bool = True) -> dict[Partition, int]:
        """The offset of each partition for its timestamp (EARLIEST, LATEST or ms since the epoch: the first
        offset at or after it, -1 where there is none); blocks. Fails with the first partition's error."""
        consumer = self._acquire(read_committed)
        try:
            deadline = time.monotonic() + self.timeout
            items = list(specs.items())
            out: dict[Partition, int] = {}
            for i in range(0, len(items), self.chunk):
                request = [TopicPartition(t, p, ts) for (t, p), ts in items[i : i + self.chunk]]
                for tp in self._offsets_for_times(consumer, request, deadline):
                    if tp.error is not None:
                        raise KafkaException(tp.error)
                    out[(tp.topic, tp.partition)] = tp.offset
            return out
        finally:
            self._release()

    @staticmethod
    def _offsets_for_times(
        consumer: Consumer, request: list[TopicPartition], deadline: float
    ) -> list[TopicPartition]:
        """The consumer knows the partitions and leaders of its last metadata: a topic created or grown since
        reads as an unknown partition (the whole call failing, or the partition's own error), and a partition
        whose leader changed (a broker restarted) as a fenced or unknown leader epoch, until the metadata is
        asked for again, which is done once."""
        for attempt in (1, 2):
            left = deadline - time.monotonic()
            if left <= 0:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "listing offsets timed out"))
            try:
                answer = list(consumer.offsets_for_times(request, timeout=left))
            except KafkaException as exc:
                if attempt == 2 or exc.args[0].code() not in _STALE_METADATA:
                    raise
                unknown = {tp.topic for tp in request}
            else:
                unknown = {tp.topic for tp in answer if _stale_metadata(tp)}
                if attempt == 2 or not unknown:
                    return answer
            for topic in sorted(unknown):
                consumer.list_topics(topic, timeout=max(0.1, deadline - time.monotonic()))
        raise AssertionError("unreachable")

    def _acquire(self, read_committed: bool) -> Consumer:
        with self._lock:
            if self._closed:
                raise KafkaException(KafkaError(KafkaError._DESTROY, "the Kafka adapter is closed"))
            consumer = self._consumers.get(read_committed)
            if consumer is None:
                consumer = self._consumers[read_committed] = probe_consumer(
                    self.conf, read_committed=read_committed
                )
            self._readers += 1
            return consumer

    def _release(self) -> None:
        with self._lock:
            self._readers -= 1
            last = self._closed and self._readers == 0
        if last:
            self._close_consumers()

    def close(self) -> None:
        """Close the consumers now, or when the reads in flight end; idempotent."""
        with self._lock:
            self._closed = True
            idle = self._readers == 0
        if idle:
            self._close_consumers()

    def _close_consumers(self) -> None:
        with self._lock:
            consumers, self._consumers = list(self._consumers.values()), {}
        for consumer in consumers:
            consumer.close()


_STALE_METADATA = {
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
}
"""A partition error that new metadata answers: the partition or its leader moved since the last."""


def _stale_metadata(tp: TopicPartition) -> bool:
    return tp.error is not None and tp.error.code() in _STALE_METADATA


def record_offsets_blocking(
    conf: Mapping[str, Any], ranges: Mapping[Partition, tuple[int, int]], timeout: float
) -> dict[Partition, list[int]]:
    """One consumer reads every range at once (one fetch session for all partitions, not a consumer
    per range): 10,000 small ranges cost about what one does."""
    found: dict[Partition, list[int]] = {p: [] for p in ranges}
    todo = {p: (start, end) for p, (start, end) in ranges.items() if end > start}
    if not todo:
        return found
    consumer = probe_consumer(conf)
    try:
        consumer.assign([TopicPartition(t, p, start) for (t, p), (start, _) in todo.items()])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() >= deadline:
                raise KafkaAdapterError(
                    f"counting records of {len(todo)} partition(s) ({names_of(sorted(todo)[:3])}) timed out"
                )
            for msg in consumer.consume(num_messages=10_000, timeout=0.05):
                if msg.error():
                    continue
                key = (msg.topic(), msg.partition())
                offset = msg.offset()
                if key in todo and offset is not None and todo[key][0] <= offset < todo[key][1]:
                    found[key].append(offset)
            # Markers and aborted records move the position without a message: the position says done.
            done = [
                tp
                for tp in consumer.position([TopicPartition(t, p) for t, p in todo])
                if tp.offset >= todo[(tp.topic, tp.partition)][1]
            ]
            if done:
                consumer.pause(done)
                for tp in done:
                    del todo[(tp.topic, tp.partition)]
        return found
    finally:
        consumer.close()


def record_timestamps_blocking(
    conf: Mapping[str, Any], offsets: Mapping[Partition, int], timeout: float
) -> dict[Partition, int | None]:
    consumer = probe_consumer(conf)
    try:
        out: dict[Partition, int | None] = {}
        for (topic, partition), offset in offsets.items():
            consumer.assign([TopicPartition(topic, partition, offset)])
            out[(topic, partition)] = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error():
                    out[(topic, partition)] = msg.timestamp()[1]
                    break
            consumer.unassign()
        return out
    finally:
        consumer.close()
