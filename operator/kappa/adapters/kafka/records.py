"""Reads the admin API cannot answer, with a read_committed consumer of the operator's own (`probe_consumer`):
the offsets of the data records a transactional reader gets in a range (`record_offsets_blocking`: the
recount in which transaction markers and aborted records do not count), and the timestamp of the first
readable record at an offset (`record_timestamps_blocking`). They block: `KafkaAdmin` runs them in worker
threads."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from kappa.adapters.kafka.connection import quiet_client_config
from kappa.adapters.kafka.values import KafkaAdapterError, Partition, names_of


def probe_consumer(conf: Mapping[str, Any]) -> Consumer:
    """A read_committed consumer in a group of its own that commits nothing, for probes."""
    return Consumer(
        {
            **conf,
            **quiet_client_config(str(conf["bootstrap.servers"])),
            "group.id": f"kappa-probe-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "error",  # never silently jump: a probe past retention must fail loudly
        }
    )


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
