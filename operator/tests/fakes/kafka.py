"""`FakeKafka`: one in-memory Kafka cluster (topics of partition logs, consumer groups), and `FakeKafkaAdmin`,
the adapters/kafka/admin.py `KafkaAdmin` the controllers use, over it. `FakeLagTracking` is the operator's
controllers/lag.py `LagTracking` whose monitors (the real adapters/lag_monitor.py `LagMonitor`, Burrow-style
evaluation included) poll the fake cluster when the test says so (`poll`), as the background loop would.

`FakeKafkaAdmin` subclasses `KafkaAdmin` and replaces only the calls that reach a broker (describe and
create topics, configs, ListOffsets, OffsetFetch/Commit, DescribeGroups, DeleteRecords, reads of records);
what `KafkaAdmin` builds on them (`partitions`, `topic_exists`, `describe_topics`, `resolve_start`,
`committed`, `count_records`, `partition_facts`) runs as it is. Each replaced call answers as the broker
does: a missing topic is UNKNOWN_TOPIC_OR_PART (`partitions` turns it into `UnknownTopic`), `ensure_topic`
never removes partitions (`PartitionDecreaseRefused`), `seed_group` refuses a group with other offsets or
members (`GroupInUse`), a time with no record at or after it is offset -1, topic configs carry the broker's
defaults (cleanup.policy delete, retention.ms 7 days, retention.bytes -1).

Not modelled: transactions (no commit markers: every offset is a record), compaction, quotas (adapters/
quota.py's client is not faked: keep spec.throttle out of these tests), brokers going down, and several
clusters (every connection reaches this one).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException

from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.kafka.health import cluster_health
from kappa.adapters.kafka.values import (
    GroupInfo,
    GroupInUse,
    KafkaAdapterError,
    Partition,
    PartitionDecreaseRefused,
    TopicEnsured,
)
from kappa.adapters.lag_monitor import LagMonitor
from kappa.controllers.lag import LagTracking

DEFAULT_CONFIG = {"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1"}
"""What describe_configs answers for a topic that sets nothing: the broker's defaults."""


def _unknown(what: str) -> KafkaException:
    return KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"{what}: Broker: Unknown topic"))


@dataclass
class Log:
    """One partition: the timestamp of every record ever written (index = offset), and the log start."""

    timestamps: list[int] = field(default_factory=list)
    start: int = 0

    @property
    def end(self) -> int:
        return len(self.timestamps)


@dataclass
class Topic:
    partitions: list[Log]
    config: dict[str, str]
    replication_factor: int = 1


class FakeKafka:
    """The cluster's state, and what producers, consumers and the test do to it."""

    def __init__(self) -> None:
        self.topics: dict[str, Topic] = {}
        self.groups: dict[str, dict[Partition, int]] = {}
        self.members: dict[str, int] = {}

    # -- the world ------------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1, config: Mapping[str, str] | None = None) -> None:
        self.topics[name] = Topic([Log() for _ in range(partitions)], dict(config or {}))

    def produce(
        self, topic: str, records: int, *, partition: int | None = None, timestamp_ms: int | None = None
    ) -> None:
        """`records` records, round robin over the partitions unless one is given, stamped now or as given."""
        logs = self.topics[topic].partitions
        stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        for i in range(records):
            logs[partition if partition is not None else i % len(logs)].timestamps.append(stamp)

    def commit(self, group: str, offsets: Mapping[Partition, int]) -> None:
        """A consumer of the group commits (a Flink job checkpoints its offsets)."""
        self.groups.setdefault(group, {}).update(offsets)

    def consume_all(self, group: str, topics: Iterable[str]) -> None:
        """The group has read everything there is in the topics."""
        self.commit(
            group, {(t, p): log.end for t in topics for p, log in enumerate(self.topics[t].partitions)}
        )

    def ends(self, topics: Iterable[str]) -> dict[Partition, int]:
        return {(t, p): log.end for t in topics for p, log in enumerate(self.topics[t].partitions)}

    def admin(self, connection: KafkaConnection | str) -> FakeKafkaAdmin:
        return FakeKafkaAdmin(self, connection)

    def _log(self, part: Partition) -> Log:
        topic, index = part
        if topic not in self.topics or not 0 <= index < len(self.topics[topic].partitions):
            raise _unknown(f"{topic}[{index}]")
        return self.topics[topic].partitions[index]


class FakeKafkaAdmin(KafkaAdmin):
    """`KafkaAdmin` over a `FakeKafka` (see the module docstring for what is replaced)."""

    def __init__(self, cluster: FakeKafka, connection: KafkaConnection | str) -> None:  # no AdminClient
        self.cluster = cluster
        self.connection = KafkaConnection.of(connection)
        self.bootstrap_servers = self.connection.bootstrap
        self.timeout = 30.0
        self.health = cluster_health(self.connection)

    # -- topics ---------------------------------------------------------------------------------------

    async def partitions_by_topic(
        self, topics: Iterable[str]
    ) -> tuple[dict[str, list[Partition]], list[str]]:
        names = sorted(set(topics))
        found = {
            t: [(t, p) for p in range(len(self.cluster.topics[t].partitions))]
            for t in names
            if t in self.cluster.topics
        }
        return found, [t for t in names if t not in self.cluster.topics]

    async def topic_configs(self, topics: Iterable[str]) -> dict[str, dict[str, str]]:
        out = {}
        for name in sorted(set(topics)):
            if name not in self.cluster.topics:
                raise _unknown(name)
            out[name] = {**DEFAULT_CONFIG, **self.cluster.topics[name].config}
        return out

    async def ensure_topic(
        self,
        name: str,
        *,
        partitions: int,
        replication_factor: int = 1,
        config: Mapping[str, str] | None = None,
    ) -> TopicEnsured:
        config = dict(config or {})
        topic = self.cluster.topics.get(name)
        if topic is None:
            self.cluster.create_topic(name, partitions, config)
            self.cluster.topics[name].replication_factor = replication_factor
            return TopicEnsured(name, created=True)
        current = len(topic.partitions)
        if partitions < current:
            raise PartitionDecreaseRefused(
                f"topic {name} has {current} partitions; Kafka cannot decrease them to {partitions}"
            )
        topic.partitions += [Log() for _ in range(partitions - current)]
        changed = tuple(sorted(k for k, v in config.items() if topic.config.get(k) != v))
        topic.config.update(config)
        return TopicEnsured(
            name, created=False, partitions_added=partitions - current, configs_changed=changed
        )

    async def delete_topic(self, name: str) -> bool:
        return self.cluster.topics.pop(name, None) is not None

    async def alter_topic_config(self, name: str, config: Mapping[str, str]) -> None:
        if name not in self.cluster.topics:
            raise _unknown(name)
        self.cluster.topics[name].config.update(config)

    async def delete_records(self, before: Mapping[Partition, int]) -> dict[Partition, int]:
        out = {}
        for part, offset in before.items():
            log = self.cluster._log(part)
            log.start = max(log.start, min(offset, log.end))
            out[part] = log.start
        return out

    # -- offsets --------------------------------------------------------------------------------------

    async def log_start_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return {p: self.cluster._log(p).start for p in partitions}

    async def end_offsets(
        self, partitions: Iterable[Partition], *, read_committed: bool = True
    ) -> dict[Partition, int]:
        return {p: self.cluster._log(p).end for p in partitions}

    async def offsets_for_time(
        self, partitions: Iterable[Partition], timestamp_ms: int
    ) -> dict[Partition, int]:
        out = {}
        for part in partitions:
            log = self.cluster._log(part)
            out[part] = next((o for o in range(log.start, log.end) if log.timestamps[o] >= timestamp_ms), -1)
        return out

    # -- consumer groups ------------------------------------------------------------------------------

    async def committed_many(self, groups: Iterable[str]) -> dict[str, dict[Partition, int]]:
        return {g: dict(self.cluster.groups.get(g, {})) for g in sorted(set(groups))}

    async def describe_groups(self, groups: Iterable[str]) -> dict[str, GroupInfo]:
        out = {}
        for name in sorted(set(groups)):
            members = self.cluster.members.get(name, 0)
            known = name in self.cluster.groups or members > 0
            state = "Stable" if members else "Empty" if known else "Dead"
            out[name] = GroupInfo(name, state, members, exists=known)
        return out

    async def seed_group(self, group: str, offsets: Mapping[Partition, int]) -> None:
        if self.cluster.members.get(group):
            raise GroupInUse(f"consumer group {group} has {self.cluster.members[group]} active member(s)")
        current = self.cluster.groups.get(group)
        if current:
            if current == dict(offsets):
                return
            raise GroupInUse(
                f"consumer group {group} already has committed offsets; replay groups must be new"
            )
        for part in offsets:
            self.cluster._log(part)
        self.cluster.groups[group] = dict(offsets)

    async def delete_group(self, group: str) -> bool:
        if self.cluster.members.get(group):
            raise KafkaAdapterError(f"consumer group {group} is not empty")
        return self.cluster.groups.pop(group, None) is not None

    # -- records --------------------------------------------------------------------------------------

    async def record_offsets(
        self, ranges: Mapping[Partition, tuple[int, int]], timeout: float = 10.0
    ) -> dict[Partition, list[int]]:
        out = {}
        for part, (start, end) in ranges.items():
            log = self.cluster._log(part)
            out[part] = list(range(max(start, log.start), min(end, log.end)))
        return out

    async def record_timestamps(
        self, offsets: Mapping[Partition, int], timeout: float = 5.0
    ) -> dict[Partition, int | None]:
        out: dict[Partition, int | None] = {}
        for part, offset in offsets.items():
            log = self.cluster._log(part)
            at = max(offset, log.start)
            out[part] = log.timestamps[at] if at < log.end else None
        return out

    def close(self) -> None:
        return None


class FakeLagTracking(LagTracking):
    """The operator's lag tracking, its monitors over the fake cluster; `poll()` is one round of its loop."""

    def __init__(self, kafka: FakeKafka) -> None:
        super().__init__(interval=3600.0)
        self.kafka = kafka

    def monitor(self, connection: KafkaConnection | str) -> LagMonitor:
        key = KafkaConnection.of(connection)
        if key not in self.monitors:
            self.monitors[key] = LagMonitor(self.kafka.admin(key))
        return self.monitors[key]

    async def poll(self) -> None:
        """Every monitor polls once, as `LagTracking.run` starts each round."""
        for monitor in list(self.monitors.values()):
            await monitor.poll()
