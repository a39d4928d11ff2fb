"""`KafkaAdmin`: the Kafka client the controllers use, one per connection (a cluster and its credentials).

- topics: partitions, configs, retention facts; `ensure_topic` (create, add partitions, set configs; never
  fewer partitions), deletion, `delete_records`;
- offsets: log start, end (last stable under read_committed), by time (through `OffsetReader`, records.py),
  and where a replay starts (`resolve_start`);
- consumer groups: committed offsets (the lag reads: `committed_many`), descriptions, `seed_group` (a new
  replay group at its start offsets), deletion; through kafka-python (groups.py);
- records: marker-aware record counts and timestamps (records.py), and the retention preflight's
  `partition_facts`.

Calls that may fail for a moment are `@retried` (calls.py)."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from kappa.adapters.kafka.calls import await_future, is_error, retried
from kappa.adapters.kafka.connection import KafkaConnection, quiet_client_config
from kappa.adapters.kafka.groups import GroupAdmin
from kappa.adapters.kafka.health import cluster_health
from kappa.adapters.kafka.records import (
    EARLIEST,
    LATEST,
    OffsetReader,
    record_offsets_blocking,
    record_timestamps_blocking,
)
from kappa.adapters.kafka.values import (
    GroupInfo,
    GroupInUse,
    KafkaAdapterError,
    Partition,
    PartitionDecreaseRefused,
    StartResolution,
    TopicEnsured,
    UnknownTopic,
    names_of,
)
from kappa.machines.preflight import PartitionFacts, TopicFacts


class KafkaAdmin:
    """One AdminClient per Kafka connection (a cluster and its credentials), shared by every controller."""

    def __init__(
        self,
        connection: KafkaConnection | str,
        *,
        client_id: str = "kappa-operator",
        timeout: float = 30.0,
    ):
        self.connection = KafkaConnection.of(connection)
        self.bootstrap_servers = self.connection.bootstrap
        self.timeout = timeout
        self.health = cluster_health(self.connection)
        self._conf: dict[str, str | int | float | bool] = {
            **self.connection.librdkafka(),
            "client.id": client_id,
        }
        self._admin = AdminClient({**self._conf, **quiet_client_config(self.bootstrap_servers)})
        self._groups = GroupAdmin(self.connection, client_id=f"{client_id}-groups", timeout=timeout)
        self._offsets = OffsetReader(self._conf, timeout=timeout)
        # kafka-python's IO thread holds its client, librdkafka's threads its consumers: an adapter dropped
        # without close() must still stop them.
        weakref.finalize(self, self._groups.close)
        weakref.finalize(self, self._offsets.close)

    # -- topics ---------------------------------------------------------------------------------------

    async def partitions(self, topics: Iterable[str]) -> list[Partition]:
        """All partitions of the topics; UnknownTopic if any is missing."""
        found, missing = await self.partitions_by_topic(topics)
        if missing:
            raise UnknownTopic(f"topic {', '.join(missing)} does not exist")
        return sorted(p for parts in found.values() for p in parts)

    @retried
    async def partitions_by_topic(
        self, topics: Iterable[str]
    ) -> tuple[dict[str, list[Partition]], list[str]]:
        """Partitions per existing topic, and the topics that do not exist."""
        names = sorted(set(topics))
        if not names:
            return {}, []
        futures = self._admin.describe_topics(TopicCollection(names), request_timeout=self.timeout)
        found: dict[str, list[Partition]] = {}
        missing: list[str] = []
        for name, future in futures.items():
            try:
                description = await await_future(future, self.timeout)
            except KafkaException as exc:
                if is_error(exc, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    missing.append(name)
                    continue
                raise
            found[name] = sorted((name, p.id) for p in description.partitions)
        return found, sorted(missing)

    async def topic_exists(self, name: str) -> bool:
        try:
            await self.partitions([name])
        except UnknownTopic:
            return False
        return True

    @retried
    async def topic_configs(self, topics: Iterable[str]) -> dict[str, dict[str, str]]:
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in sorted(set(topics))]
        if not resources:
            return {}
        futures = self._admin.describe_configs(resources, request_timeout=self.timeout)
        out: dict[str, dict[str, str]] = {}
        for resource, future in futures.items():
            entries = await await_future(future, self.timeout)
            out[resource.name] = {k: e.value for k, e in entries.items() if e.value is not None}
        return out

    async def describe_topics(self, topics: Iterable[str]) -> dict[str, TopicFacts]:
        """Partitions and the retention configs that decide whether history is still there."""
        names = sorted(set(topics))
        parts, configs = await asyncio.gather(self.partitions(names), self.topic_configs(names))
        counts: dict[str, int] = {}
        for topic, _ in parts:
            counts[topic] = counts.get(topic, 0) + 1
        return {
            name: TopicFacts(
                name=name,
                partitions=counts.get(name, 0),
                cleanup_policy=configs[name].get("cleanup.policy", "delete"),
                retention_ms=int(configs[name].get("retention.ms", "604800000")),
                retention_bytes=int(configs[name].get("retention.bytes", "-1")),
            )
            for name in names
        }

    async def ensure_topic(
        self,
        name: str,
        *,
        partitions: int,
        replication_factor: int = 1,
        config: Mapping[str, str] | None = None,
    ) -> TopicEnsured:
        """Create the topic, or bring an existing one to the requested partitions and config. Idempotent.

        Kafka cannot remove partitions; asking for fewer is refused, not ignored.
        """
        config = dict(config or {})
        new = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=config)
        try:
            await await_future(
                self._admin.create_topics([new], request_timeout=self.timeout)[name], self.timeout
            )
            await self._until_visible(name)
            return TopicEnsured(name, created=True)
        except KafkaException as exc:
            if not is_error(exc, KafkaError.TOPIC_ALREADY_EXISTS):
                raise KafkaAdapterError(f"creating topic {name} failed: {exc.args[0].str()}") from exc
        current = len(await self.partitions([name]))
        if partitions < current:
            raise PartitionDecreaseRefused(
                f"topic {name} has {current} partitions; Kafka cannot decrease them to {partitions}"
            )
        added = 0
        if partitions > current:
            futures = self._admin.create_partitions(
                [NewPartitions(name, partitions)], request_timeout=self.timeout
            )
            await await_future(futures[name], self.timeout)
            added = partitions - current
        existing = (await self.topic_configs([name]))[name]
        changed = tuple(sorted(k for k, v in config.items() if existing.get(k) != v))
        if changed:
            await self.alter_topic_config(name, {k: config[k] for k in changed})
        return TopicEnsured(name, created=False, partitions_added=added, configs_changed=changed)

    async def _until_visible(self, name: str) -> None:
        """A created topic reaches the metadata of every broker a moment later; callers use it at once."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                await self.partitions([name])
                return
            except UnknownTopic:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def delete_topic(self, name: str) -> bool:
        """Delete a topic; False if there was none. Callers first check that no reader needs it."""
        futures = self._admin.delete_topics([name], request_timeout=self.timeout)
        try:
            await await_future(futures[name], self.timeout)
        except KafkaException as exc:
            if is_error(exc, KafkaError.UNKNOWN_TOPIC_OR_PART):
                return False
            raise
        return True

    @retried
    async def alter_topic_config(self, name: str, config: Mapping[str, str]) -> None:
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()]
        resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
        futures = self._admin.incremental_alter_configs([resource], request_timeout=self.timeout)
        for future in futures.values():
            await await_future(future, self.timeout)

    @retried
    async def delete_records(self, before: Mapping[Partition, int]) -> dict[Partition, int]:
        """Move the log start (tests and retention emergencies); returns the new low watermarks."""
        tps = [TopicPartition(t, p, o) for (t, p), o in before.items()]
        futures = self._admin.delete_records(tps, request_timeout=self.timeout)
        return {
            (tp.topic, tp.partition): (await await_future(f, self.timeout)).low_watermark
            for tp, f in futures.items()
        }

    # -- offsets --------------------------------------------------------------------------------------

    @retried
    async def _list_offsets(
        self, specs: Mapping[Partition, int], *, read_committed: bool = True
    ) -> dict[Partition, int]:
        if not specs:
            return {}
        # On one of the cluster's own worker threads: the event loop (every controller, the health endpoint)
        # must not wait out a round of 10,000 partitions, and the lag poll must not queue behind a thousand
        # controllers' Kubernetes calls in the default pool.
        return await self._groups.run(self._offsets.read, specs, read_committed=read_committed)

    async def log_start_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return await self._list_offsets(dict.fromkeys(partitions, EARLIEST))

    async def end_offsets(
        self, partitions: Iterable[Partition], *, read_committed: bool = True
    ) -> dict[Partition, int]:
        """The last stable offset under read_committed (what a transactional reader reaches), else the HW."""
        return await self._list_offsets(dict.fromkeys(partitions, LATEST), read_committed=read_committed)

    async def offsets_for_time(
        self, partitions: Iterable[Partition], timestamp_ms: int
    ) -> dict[Partition, int]:
        """Offset of the first record at or after the time; -1 where there is none."""
        return await self._list_offsets(dict.fromkeys(partitions, timestamp_ms))

    async def resolve_start(
        self,
        topics: Iterable[str],
        *,
        earliest: bool = False,
        timestamp_ms: int | None = None,
        offsets: Mapping[Partition, int] | None = None,
    ) -> StartResolution:
        """Where a replay of `topics` starts on every partition: exactly one of the three positions."""
        if sum([earliest, timestamp_ms is not None, offsets is not None]) != 1:
            raise ValueError("exactly one of earliest, timestamp_ms or offsets")
        parts = await self.partitions(topics)
        if earliest:
            return StartResolution(await self.log_start_offsets(parts))
        if offsets is not None:
            missing = [p for p in parts if p not in offsets]
            unknown = [p for p in offsets if p not in parts]
            if missing or unknown:
                raise KafkaAdapterError(
                    "explicit offsets must cover exactly the source partitions; "
                    f"missing {names_of(missing) or 'none'}, unknown {names_of(unknown) or 'none'}"
                )
            return StartResolution(dict(offsets))
        assert timestamp_ms is not None
        by_time, ends = await asyncio.gather(
            self.offsets_for_time(parts, timestamp_ms), self.end_offsets(parts)
        )
        past_end = sorted(p for p, o in by_time.items() if o < 0)
        return StartResolution({p: (ends[p] if o < 0 else o) for p, o in by_time.items()}, past_end)

    # -- consumer groups ------------------------------------------------------------------------------

    async def committed(self, group: str) -> dict[Partition, int]:
        """The group's committed offsets (partitions without a commit are left out)."""
        return (await self.committed_many([group]))[group]

    @retried
    async def committed_many(self, groups: Iterable[str]) -> dict[str, dict[Partition, int]]:
        """Committed offsets of many groups in one round: one OffsetFetch per coordinator (see GroupAdmin:
        never librdkafka's AdminClient, which crashes the process on a coordinator that is not ready)."""
        return await self._groups.run(self._groups.fetch, sorted(set(groups)))

    @retried
    async def describe_groups(self, groups: Iterable[str]) -> dict[str, GroupInfo]:
        names = sorted(set(groups))
        found = await self._groups.run(self._groups.describe, names)
        out = {
            name: GroupInfo(name, state, members, exists=state not in ("DEAD", "UNKNOWN"))
            for name, (state, members) in ((n, f) for n, f in found.items() if f is not None)
        }
        # Groups of the consumer protocol (KIP-848), which DescribeGroups does not describe: librdkafka's
        # ConsumerGroupDescribe does. The operator's own groups (Flink's, assigned) are classic ones.
        modern = sorted(n for n, f in found.items() if f is None)
        if modern:
            futures = self._admin.describe_consumer_groups(modern, request_timeout=self.timeout)
            for name, future in futures.items():
                desc = await await_future(future, self.timeout)
                state = getattr(desc.state, "name", str(desc.state))
                out[name] = GroupInfo(
                    name, state, len(desc.members or []), exists=state not in ("DEAD", "UNKNOWN")
                )
        return out

    async def seed_group(self, group: str, offsets: Mapping[Partition, int]) -> None:
        """Create a group whose committed offsets are `offsets`. Idempotent for the same offsets; refuses a
        group that already has other offsets or live members."""
        info = (await self.describe_groups([group]))[group]
        if info.members:
            raise GroupInUse(f"consumer group {group} has {info.members} active member(s)")
        current = await self.committed(group)
        if current:
            if current == dict(offsets):
                return
            raise GroupInUse(
                f"consumer group {group} already has committed offsets; replay groups must be new"
            )
        await self._alter_group_offsets(group, offsets)

    @retried
    async def _alter_group_offsets(self, group: str, offsets: Mapping[Partition, int]) -> None:
        await self._groups.run(self._groups.commit, group, offsets)

    @retried
    async def delete_group(self, group: str) -> bool:
        """Delete a group; False if there was none. Callers first check no reader or rollback needs it."""
        return await self._groups.run(self._groups.delete, group)

    # -- reads the admin API cannot answer ------------------------------------------------------------

    async def record_offsets(
        self, ranges: Mapping[Partition, tuple[int, int]], timeout: float = 10.0
    ) -> dict[Partition, list[int]]:
        """Offsets of the data records a read_committed reader gets in [start, end) per partition."""
        return await self._groups.run(record_offsets_blocking, self._conf, ranges, timeout)

    async def count_records(
        self, ranges: Mapping[Partition, tuple[int, int]], timeout: float = 10.0
    ) -> dict[Partition, int]:
        """Data records a read_committed reader gets in [start, end) per partition: transaction markers and
        aborted records do not count."""
        found = await self.record_offsets(ranges, timeout)
        return {p: len(offsets) for p, offsets in found.items()}

    async def record_timestamps(
        self, offsets: Mapping[Partition, int], timeout: float = 5.0
    ) -> dict[Partition, int | None]:
        """Timestamp (ms) of the first readable record at or after each offset; None where there is none."""
        return await self._groups.run(record_timestamps_blocking, self._conf, offsets, timeout)

    async def partition_facts(self, start: StartResolution) -> dict[Partition, PartitionFacts]:
        """What the retention preflight needs about each partition of a planned replay."""
        parts = list(start.offsets)
        log_starts, ends = await asyncio.gather(self.log_start_offsets(parts), self.end_offsets(parts))
        probe = {
            p: max(o, log_starts[p]) for p, o in start.offsets.items() if max(o, log_starts[p]) < ends[p]
        }
        stamps = await self.record_timestamps(probe) if probe else {}
        return {p: PartitionFacts(log_starts[p], ends[p], start.offsets[p], stamps.get(p)) for p in parts}

    def close(self) -> None:
        """AdminClient has no close; dropping the reference lets librdkafka shut down its threads."""
        self._admin = None  # type: ignore[assignment]
        self._groups.close()
        self._offsets.close()
