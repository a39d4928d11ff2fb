"""The Kafka adapter: the only Kafka I/O in the package, on confluent-kafka's AdminClient (and a consumer
where the admin API cannot answer: record timestamps and marker-aware record counts).

Every method is async. Admin calls return concurrent futures, awaited with asyncio.wrap_future; consumer
calls block and run in a worker thread. Nothing here blocks the event loop.

librdkafka logs only from CRITICAL up (`quiet_client_config`): a cluster that does not answer is logged by the
adapters, once when it stops answering and once when it answers again (`Reachability`), not on every reconnect
attempt, which librdkafka makes several times a second.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from confluent_kafka import Consumer as _Consumer
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from kappa.machines.preflight import PartitionFacts, TopicFacts

Partition = tuple[str, int]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transition:
    """A change of state worth one log line: `down` at WARNING, back up at INFO."""

    down: bool
    message: str


@dataclass
class Reachability:
    """Whether a component answers, from a sequence of observations; pure (the caller passes the time).

    Only changes of state make a Transition: the first failure (and the first after a recovery), and the
    first success after failures. Failures while down are counted, not reported, so a client that retries ten
    times a second says so once. The first success of all is no transition: nothing was wrong before it.
    """

    what: str
    """How log lines name the component, e.g. "Kafka at broker-0:9092"."""
    failing: str = "unreachable"
    """What the down line says of it: "Kafka at X unreachable: ...", "lag poll of X failing: ..."."""
    up: bool | None = None
    """None until the first observation."""
    down_since: float = 0.0
    failures: int = 0
    """Failures since the last success."""
    reason: str = ""
    """Why it went down, while it is down."""

    def observe(self, ok: bool, reason: str = "", now: float = 0.0) -> Transition | None:
        was_down = self.up is False
        if ok:
            failures, self.up, self.failures, self.reason = self.failures, True, 0, ""
            if not was_down:
                return None
            return Transition(
                False,
                f"{self.what} answers again, after {now - self.down_since:.0f}s and {failures} failure(s)",
            )
        self.failures += 1
        if was_down:
            return None
        self.up, self.down_since, self.reason = False, now, reason or "no answer"
        return Transition(True, f"{self.what} {self.failing}: {self.reason}")


class ClusterHealth:
    """The Reachability of one Kafka cluster, shared by every client of it (admin, consumers, quota calls),
    so that "Kafka at X unreachable" is said once whichever client noticed. Thread-safe: admin results arrive
    on the event loop, consumers run in worker threads."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._state = Reachability(f"Kafka at {bootstrap_servers}")
        self._lock = threading.Lock()

    @property
    def unreachable(self) -> str | None:
        """Why the cluster is down ("Kafka at X unreachable: ..."); None while it answers (or is unknown)."""
        state = self._state
        return f"{state.what} unreachable: {state.reason}" if state.up is False else None

    def observe(self, ok: bool, reason: str = "") -> None:
        with self._lock:
            transition = self._state.observe(ok, reason, time.monotonic())
        if transition is not None:
            log.log(logging.WARNING if transition.down else logging.INFO, "%s", transition.message)


_CLUSTERS: dict[str, ClusterHealth] = {}
_CLUSTERS_LOCK = threading.Lock()


def cluster_health(bootstrap_servers: str) -> ClusterHealth:
    with _CLUSTERS_LOCK:
        if bootstrap_servers not in _CLUSTERS:
            _CLUSTERS[bootstrap_servers] = ClusterHealth(bootstrap_servers)
        return _CLUSTERS[bootstrap_servers]


def quiet_client_config(bootstrap_servers: str) -> dict[str, Any]:
    """Configuration every confluent-kafka client of the operator gets: librdkafka's own log only from
    CRITICAL up (KAPPA_LIBRDKAFKA_LOG_LEVEL, syslog levels, 7 for debugging). Its connection failures (ten
    `FAIL` lines a second per client while a broker is down) are the adapters' to report, once per outage,
    through the cluster's Reachability. No Python callback (`logger`, `error_cb`) is handed to librdkafka:
    those run from its threads and need a poll loop beside every client, and a client destroyed while one is
    served is how librdkafka crashes the process."""
    return {"log_level": int(os.environ.get("KAPPA_LIBRDKAFKA_LOG_LEVEL", "2"))}


class KafkaAdapterError(Exception):
    """A Kafka operation was refused; the message is fit for a condition."""


class GroupInUse(KafkaAdapterError):
    """A replay group must be new: reusing a group is how replays silently serve wrong numbers."""


class PartitionDecreaseRefused(KafkaAdapterError):
    pass


class UnknownTopic(KafkaAdapterError):
    pass


@dataclass(frozen=True)
class StartResolution:
    """Offsets a new group starts from, per partition."""

    offsets: dict[Partition, int]
    past_end: list[Partition] = field(default_factory=list)
    """Partitions with no record at or after the requested time: they start at the end offset."""

    @property
    def message(self) -> str:
        if not self.past_end:
            return f"start resolved on {len(self.offsets)} partition(s)"
        names = ", ".join(f"{t}[{p}]" for t, p in self.past_end)
        return f"no record at or after the start time on {names}: those start at their end offset"


@dataclass(frozen=True)
class GroupInfo:
    group: str
    state: str
    members: int
    exists: bool


@dataclass(frozen=True)
class TopicEnsured:
    name: str
    created: bool
    partitions_added: int = 0
    configs_changed: tuple[str, ...] = ()


async def _wait(future: Future[Any]) -> Any:
    return await asyncio.wrap_future(future)


# Errors that say "ask again shortly": a coordinator moving or loading, a leader election, a timeout.
_TRANSIENT = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
}

P = ParamSpec("P")
T = TypeVar("T")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        error: KafkaError = exc.args[0]
        return error.code() in _TRANSIENT or bool(error.retriable())
    return False


def retried(
    method: Callable[Concatenate[KafkaAdmin, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[KafkaAdmin, P], Coroutine[Any, Any, T]]:
    """The adapter's one retry policy: transient errors are retried with backoff until the call's timeout."""

    @functools.wraps(method)
    async def wrapper(self: KafkaAdmin, *args: P.args, **kwargs: P.kwargs) -> T:
        delay = 0.1
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                result = await method(self, *args, **kwargs)
            except KafkaException as exc:
                if not _transient(exc) or time.monotonic() + delay > deadline:
                    if _is(exc, *_UNREACHABLE):
                        self.health.observe(False, exc.args[0].str())
                    raise
            else:
                self.health.observe(True)
                return result
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    return wrapper  # type: ignore[return-value]  # functools.wraps types it as _Wrapped


# Errors that say the cluster did not answer at all (rather than answering no). A call that kept failing
# until its deadline against a closed port or an unanswering broker ends in `_TIMED_OUT` ("Failed while
# waiting for controller"), not in a transport error.
_UNREACHABLE = (
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._TIMED_OUT,
)


def _is(exc: BaseException, *codes: int) -> bool:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code() in codes
    return False


class KafkaAdmin:
    """One AdminClient per Kafka cluster, shared by every controller."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = "kappa-operator", timeout: float = 30.0):
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        self.health = cluster_health(bootstrap_servers)
        self._conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": bootstrap_servers,
            "client.id": client_id,
        }
        self._admin = AdminClient({**self._conf, **quiet_client_config(bootstrap_servers)})

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
                description = await _wait(future)
            except KafkaException as exc:
                if _is(exc, KafkaError.UNKNOWN_TOPIC_OR_PART):
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
            entries = await _wait(future)
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
            await _wait(self._admin.create_topics([new], request_timeout=self.timeout)[name])
            await self._until_visible(name)
            return TopicEnsured(name, created=True)
        except KafkaException as exc:
            if not _is(exc, KafkaError.TOPIC_ALREADY_EXISTS):
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
            await _wait(futures[name])
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
            await _wait(futures[name])
        except KafkaException as exc:
            if _is(exc, KafkaError.UNKNOWN_TOPIC_OR_PART):
                return False
            raise
        return True

    @retried
    async def alter_topic_config(self, name: str, config: Mapping[str, str]) -> None:
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()]
        resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
        futures = self._admin.incremental_alter_configs([resource], request_timeout=self.timeout)
        for future in futures.values():
            await _wait(future)

    @retried
    async def delete_records(self, before: Mapping[Partition, int]) -> dict[Partition, int]:
        """Move the log start (tests and retention emergencies); returns the new low watermarks."""
        tps = [TopicPartition(t, p, o) for (t, p), o in before.items()]
        futures = self._admin.delete_records(tps, request_timeout=self.timeout)
        return {(tp.topic, tp.partition): (await _wait(f)).low_watermark for tp, f in futures.items()}

    # -- offsets --------------------------------------------------------------------------------------

    @retried
    async def _list_offsets(
        self, specs: Mapping[Partition, OffsetSpec], *, read_committed: bool = True
    ) -> dict[Partition, int]:
        if not specs:
            return {}
        request = {TopicPartition(t, p): spec for (t, p), spec in specs.items()}
        isolation = IsolationLevel.READ_COMMITTED if read_committed else IsolationLevel.READ_UNCOMMITTED
        futures = self._admin.list_offsets(request, isolation_level=isolation, request_timeout=self.timeout)
        # One ListOffsets request answers every partition at once; wait for all of them in one worker thread
        # rather than wrapping a thousand futures into the event loop one by one.
        await asyncio.to_thread(wait_futures, list(futures.values()), self.timeout)
        return {(k.topic, k.partition): f.result().offset for k, f in futures.items()}

    async def log_start_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return await self._list_offsets({p: OffsetSpec.earliest() for p in partitions})

    async def end_offsets(
        self, partitions: Iterable[Partition], *, read_committed: bool = True
    ) -> dict[Partition, int]:
        """The last stable offset under read_committed (what a transactional reader reaches), else the HW."""
        return await self._list_offsets(
            {p: OffsetSpec.latest() for p in partitions}, read_committed=read_committed
        )

    async def offsets_for_time(
        self, partitions: Iterable[Partition], timestamp_ms: int
    ) -> dict[Partition, int]:
        """Offset of the first record at or after the time; -1 where there is none."""
        return await self._list_offsets({p: OffsetSpec.for_timestamp(timestamp_ms) for p in partitions})

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
                    f"missing {_names(missing) or 'none'}, unknown {_names(unknown) or 'none'}"
                )
            return StartResolution(dict(offsets))
        assert timestamp_ms is not None
        by_time, ends = await asyncio.gather(
            self.offsets_for_time(parts, timestamp_ms), self.end_offsets(parts)
        )
        past_end = sorted(p for p, o in by_time.items() if o < 0)
        return StartResolution({p: (ends[p] if o < 0 else o) for p, o in by_time.items()}, past_end)

    # -- consumer groups ------------------------------------------------------------------------------

    @retried
    async def committed(self, group: str) -> dict[Partition, int]:
        """The group's committed offsets (partitions without a commit are left out)."""
        request = [ConsumerGroupTopicPartitions(group)]
        futures = self._admin.list_consumer_group_offsets(request, request_timeout=self.timeout)
        result = await _wait(futures[group])
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or []
            if tp.offset is not None and tp.offset >= 0
        }

    async def committed_many(self, groups: Iterable[str]) -> dict[str, dict[Partition, int]]:
        """Committed offsets of many groups in one round: librdkafka takes one group per request, so the
        requests are all sent at once and awaited together."""
        names = sorted(set(groups))
        results = await asyncio.gather(*(self.committed(g) for g in names))
        return dict(zip(names, results, strict=True))

    @retried
    async def describe_groups(self, groups: Iterable[str]) -> dict[str, GroupInfo]:
        names = sorted(set(groups))
        if not names:
            return {}
        futures = self._admin.describe_consumer_groups(names, request_timeout=self.timeout)
        out: dict[str, GroupInfo] = {}
        for name, future in futures.items():
            try:
                desc = await _wait(future)
            except KafkaException as exc:
                if _is(exc, KafkaError.GROUP_ID_NOT_FOUND):
                    out[name] = GroupInfo(name, "DEAD", 0, exists=False)
                    continue
                raise
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
        request = [
            ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o) for (t, p), o in offsets.items()])
        ]
        futures = self._admin.alter_consumer_group_offsets(request, request_timeout=self.timeout)
        await _wait(futures[group])

    @retried
    async def delete_group(self, group: str) -> bool:
        """Delete a group; False if there was none. Callers first check no reader or rollback needs it."""
        futures = self._admin.delete_consumer_groups([group], request_timeout=self.timeout)
        try:
            await _wait(futures[group])
        except KafkaException as exc:
            if _is(exc, KafkaError.GROUP_ID_NOT_FOUND):
                return False
            raise
        return True

    # -- reads the admin API cannot answer ------------------------------------------------------------

    def _consumer(self) -> _Consumer:
        return _Consumer(
            {
                **self._conf,
                **quiet_client_config(self.bootstrap_servers),
                "group.id": f"kappa-probe-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "error",  # never silently jump: a probe past retention must fail loudly
            }
        )

    def _count_records_blocking(
        self, ranges: Mapping[Partition, tuple[int, int]], timeout: float
    ) -> dict[Partition, int]:
        consumer = self._consumer()
        try:
            counts: dict[Partition, int] = {}
            for (topic, partition), (start, end) in ranges.items():
                counts[(topic, partition)] = 0
                if end <= start:
                    continue
                consumer.assign([TopicPartition(topic, partition, start)])
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    position = consumer.position([TopicPartition(topic, partition)])[0].offset
                    if position >= end:
                        break
                    msg = consumer.poll(0.2)
                    if msg is None or msg.error():
                        continue
                    offset = msg.offset()
                    if offset is not None and offset < end:
                        counts[(topic, partition)] += 1
                else:
                    raise KafkaAdapterError(f"counting {topic}[{partition}] [{start}, {end}) timed out")
                consumer.unassign()
            return counts
        finally:
            consumer.close()

    async def count_records(
        self, ranges: Mapping[Partition, tuple[int, int]], timeout: float = 10.0
    ) -> dict[Partition, int]:
        """Data records a read_committed reader gets in [start, end) per partition: transaction markers and
        aborted records do not count."""
        return await asyncio.to_thread(self._count_records_blocking, ranges, timeout)

    def _timestamps_blocking(
        self, offsets: Mapping[Partition, int], timeout: float
    ) -> dict[Partition, int | None]:
        consumer = self._consumer()
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

    async def record_timestamps(
        self, offsets: Mapping[Partition, int], timeout: float = 5.0
    ) -> dict[Partition, int | None]:
        """Timestamp (ms) of the first readable record at or after each offset; None where there is none."""
        return await asyncio.to_thread(self._timestamps_blocking, offsets, timeout)

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


def _names(parts: Iterable[Partition]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in parts)
