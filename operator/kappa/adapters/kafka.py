"""The Kafka adapter: the only Kafka I/O in the package, on confluent-kafka's AdminClient (and a consumer
where the admin API cannot answer: record timestamps and marker-aware record counts). Consumer groups are
read, committed and deleted with kafka-python instead (`GroupAdmin`): librdkafka's AdminClient crashes the
whole process on some answers of a group coordinator that is not ready, which a fresh Kafka gives for a while.

Every method is async. Admin calls return concurrent futures, awaited (with a bound) on the event loop;
consumer and kafka-python calls block and run in worker threads. Nothing here blocks the event loop.

librdkafka logs only from CRITICAL up (`quiet_client_config`): a cluster that does not answer is logged by the
adapters, once when it stops answering and once when it answers again (`Reachability`), not on every reconnect
attempt, which librdkafka makes several times a second.

Every client is built from a `KafkaConnection`: bootstrap servers and the security settings (TLS, SASL) of the
cluster, in librdkafka's names; kafka-python's are derived from them. A bare bootstrap string is a PLAINTEXT
connection. Credentials never appear in a connection's repr, nor in any message of this module.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

import kafka.errors as kafka_errors  # type: ignore[import-untyped]
from confluent_kafka import Consumer as _Consumer
from confluent_kafka import (
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
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
from kafka import TopicPartition as PureTopicPartition
from kafka.admin import KafkaAdminClient  # type: ignore[import-untyped]
from kafka.net.compat import KafkaNetClient  # type: ignore[import-untyped]
from kafka.protocol.metadata import CoordinatorType  # type: ignore[import-untyped]
from kafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from kappa.machines.preflight import PartitionFacts, TopicFacts

Partition = tuple[str, int]

log = logging.getLogger(__name__)


SECRET_SETTINGS = frozenset({"sasl.password", "ssl.key.pem"})
"""librdkafka settings whose values are secret: masked in every repr."""

_KAFKA_PYTHON_NAMES = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
}


@dataclass(frozen=True)
class KafkaConnection:
    """How to reach one Kafka cluster: its bootstrap servers and librdkafka's security settings
    (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.pem`,
    `ssl.certificate.pem`, `ssl.key.pem`). Hashable: clients, health and lag monitors are kept per connection,
    so that two jobs on one cluster with different credentials do not share a client.

    The repr shows the bootstrap servers, the protocol and the user, never a password or a key."""

    bootstrap: str
    config: tuple[tuple[str, str], ...] = ()
    credentials: str = ""
    """Where the credentials come from, for messages, e.g. "password from Secret ns/name key password"."""

    @classmethod
    def of(cls, connection: KafkaConnection | str) -> KafkaConnection:
        return connection if isinstance(connection, KafkaConnection) else cls(connection)

    @property
    def settings(self) -> dict[str, str]:
        return dict(self.config)

    @property
    def protocol(self) -> str:
        return self.settings.get("security.protocol", "PLAINTEXT")

    @property
    def username(self) -> str:
        return self.settings.get("sasl.username", "")

    @property
    def secured(self) -> bool:
        return self.protocol != "PLAINTEXT"

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={'***' if k in SECRET_SETTINGS else f'<{len(v)} chars>' if k.endswith('.pem') else v}"
            for k, v in self.config
        )
        return f"KafkaConnection({self.bootstrap}{', ' if shown else ''}{shown})"

    __str__ = __repr__

    def librdkafka(self) -> dict[str, str]:
        """bootstrap.servers and the security settings, for a confluent-kafka client."""
        return {"bootstrap.servers": self.bootstrap, **self.settings}

    def kafka_python(self) -> dict[str, Any]:
        """The same settings for a kafka-python client. TLS goes through an SSLContext built from the PEMs in
        memory (no key is ever written to disk; the client certificate goes through an anonymous memfd)."""
        settings = self.settings
        out: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        out.update({_KAFKA_PYTHON_NAMES[k]: v for k, v in settings.items() if k in _KAFKA_PYTHON_NAMES})
        if "SSL" in self.protocol:
            context = ssl.create_default_context(cadata=settings.get("ssl.ca.pem") or None)
            if "ssl.certificate.pem" in settings and "ssl.key.pem" in settings:
                _load_cert_chain(context, settings["ssl.certificate.pem"], settings["ssl.key.pem"])
            out["ssl_context"] = context
        return out


def _load_cert_chain(context: ssl.SSLContext, certificate: str, key: str) -> None:
    """ssl loads a certificate chain from files only: an anonymous in-memory file (memfd, Linux) holds the
    PEMs for the moment of the call, so nothing lands on a (possibly read-only) filesystem."""
    fd = os.memfd_create("kappa-kafka-client", 0)
    try:
        os.write(fd, f"{certificate.strip()}\n{key.strip()}\n".encode())
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _refused(error: KafkaError) -> bool:
    """A SASL login or TLS handshake the cluster refused. A client certificate the broker does not accept
    arrives after the handshake, as a transport error carrying OpenSSL's alert ("ssl/tls alert bad
    certificate")."""
    code = error.code()
    return code in (KafkaError._AUTHENTICATION, KafkaError._SSL) or (
        code == KafkaError._TRANSPORT and "SSL routines" in error.str()
    )


def authentication_failure_blocking(connection: KafkaConnection, timeout: float = 5.0) -> str | None:
    """librdkafka's words when the cluster refuses the connection's credentials or TLS handshake; None when it
    accepts them, or does not answer in `timeout` (an outage, which the clients report as one). Blocks.

    A refused SASL login or TLS handshake does not fail a request: librdkafka retries the connection until the
    request times out, which reads as "Kafka unreachable" after 30 s. It does tell its error callback at once,
    served from poll() in this thread, on a short-lived client of its own."""
    errors: list[KafkaError] = []
    producer = Producer(
        {
            **connection.librdkafka(),
            **quiet_client_config(connection.bootstrap),
            "client.id": "kappa-operator-auth-check",
            "error_cb": errors.append,
        }
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            refused = [e for e in errors if _refused(e)]
            if refused:
                return refused[0].str()
            try:
                producer.list_topics(timeout=0.3)
                return None
            except KafkaException:
                pass
            producer.poll(0.1)
        return None
    finally:
        producer.flush(0)


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

    def __init__(self, connection: KafkaConnection | str) -> None:
        self.connection = KafkaConnection.of(connection)
        self.bootstrap_servers = self.connection.bootstrap
        self._state = Reachability(f"Kafka at {self.bootstrap_servers}")
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


_CLUSTERS: dict[KafkaConnection, ClusterHealth] = {}
_CLUSTERS_LOCK = threading.Lock()


def cluster_health(connection: KafkaConnection | str) -> ClusterHealth:
    """The health of a cluster as one connection sees it (credentials refused are not another's outage)."""
    key = KafkaConnection.of(connection)
    with _CLUSTERS_LOCK:
        if key not in _CLUSTERS:
            _CLUSTERS[key] = ClusterHealth(key)
        return _CLUSTERS[key]


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


_GRACE = 5.0
"""Seconds an admin future may take beyond its request timeout before the adapter stops waiting for it."""


async def _wait(future: Future[Any], timeout: float) -> Any:
    """The result of an admin future, waited for at most `timeout` (and a grace). librdkafka resolves a
    request's future by its request timeout; the future of a client destroyed with requests in flight may
    never be resolved, and a handler awaiting it would wait forever."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout + _GRACE)
    except TimeoutError:
        raise KafkaException(
            KafkaError(KafkaError._TIMED_OUT, f"no answer in {timeout + _GRACE:.0f}s")
        ) from None


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


def pure_admin_client(connection: KafkaConnection | str, *, client_id: str, timeout: float) -> Any:
    """A kafka-python admin client: pure Python, so a broker's answer can raise in it but not crash the
    process. Its constructor connects and blocks until the cluster answers. kafka-python leaves the IO thread
    of a constructor that could not connect running, one thread more per attempt while Kafka is down: here a
    failed constructor's network client is closed before the error is raised."""
    made: list[Any] = []

    def network_client(**config: Any) -> Any:
        made.append(KafkaNetClient(**config))
        return made[-1]

    try:
        return KafkaAdminClient(
            **KafkaConnection.of(connection).kafka_python(),
            client_id=client_id,
            request_timeout_ms=int(timeout * 1000),
            bootstrap_timeout_ms=int(timeout * 1000),
            # kafka-python fails a request beyond this many in flight on a connection (NodeNotReadyError)
            # rather than queueing it; callers in several threads share the client.
            max_in_flight_requests_per_connection=64,
            kafka_client=network_client,
        )
    except BaseException:
        for client in made:
            client.close()
            client._manager._net.stop()  # what KafkaAdminClient.close() stops
        raise


def _as_kafka_exception(exc: Exception) -> KafkaException:
    """A kafka-python error as the confluent-kafka error the rest of the adapter handles: the broker's own
    error code, or the librdkafka code of a cluster that did not answer."""
    if isinstance(exc, kafka_errors.BrokerResponseError):
        code = exc.errno
    elif isinstance(exc, kafka_errors.KafkaTimeoutError):
        code = KafkaError._TIMED_OUT
    elif isinstance(exc, kafka_errors.KafkaConnectionError):
        code = KafkaError._TRANSPORT
    else:
        code = KafkaError._FAIL
    return KafkaException(KafkaError(code, str(exc), retriable=bool(getattr(exc, "retriable", False))))


_GROUP_STATES = {
    "Empty": "EMPTY",
    "Stable": "STABLE",
    "Dead": "DEAD",
    "PreparingRebalance": "PREPARING_REBALANCING",
    "CompletingRebalance": "COMPLETING_REBALANCING",
}
"""DescribeGroups' states, named as librdkafka's ConsumerGroupState names them."""


def _error_named(text: str) -> type[Exception]:
    """The kafka-python error class of a describe result's text ("[Error 69] GroupIdNotFoundError: ...")."""
    name = text.split(":", 1)[0].rsplit(" ", 1)[-1]
    found = getattr(kafka_errors, name, None)
    return found if isinstance(found, type) and issubclass(found, Exception) else kafka_errors.KafkaError


class GroupAdmin:
    """Consumer groups' offsets, descriptions, offset commits and deletions, with kafka-python rather than
    librdkafka's AdminClient, whose requests to a group coordinator can take the whole process down:

    - an OffsetFetch answered NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE makes librdkafka ask the client's
      consumer group to find its coordinator again; an AdminClient has none, and rd_kafka_cgrp_op() reads
      through a NULL pointer in the thread `rdk:main` (SIGSEGV; librdkafka issue 5040, confluent-kafka-python
      issue 1982, still so in confluent-kafka 2.16.1). A freshly started Kafka answers so while it loads
      __consumer_offsets, and a coordinator that moves answers so anywhere;
    - a coordinator request that fails to be sent frees its state twice and aborts on an assertion
      (`eonce->refcnt > 0`, SIGABRT; librdkafka pull request 5397, not released): seen once in about twenty
      fresh brokers by the lifecycle stress, through the group requests that remained on librdkafka.

    Here such answers raise retriable errors. One request per coordinator serves every group at once.
    Thread-safe: the methods block; `run` runs one on this client's own worker threads.
    """

    def __init__(self, connection: KafkaConnection | str, *, client_id: str, timeout: float) -> None:
        self.connection = KafkaConnection.of(connection)
        self.bootstrap_servers = self.connection.bootstrap
        self.client_id = client_id
        self.timeout = timeout
        self._client: Any = None
        self._closed = False
        self._lock = threading.Lock()
        # Its own threads: a cluster that does not answer holds a call for up to the timeout, and must not
        # take the event loop's default executor from the consumers and quota calls that share it.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kafka-groups")

    async def run(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """One of the blocking methods below, on this client's worker threads."""
        call = functools.partial(method, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except RuntimeError:
            if self._closed:  # the pool takes no more work once closed
                raise KafkaException(KafkaError(KafkaError._DESTROY, "the Kafka adapter is closed")) from None
            raise

    def _admin(self) -> Any:
        with self._lock:
            if self._closed:  # a call that was on its way when the adapter closed: no new client for it
                raise KafkaException(KafkaError(KafkaError._DESTROY, "the Kafka adapter is closed"))
            if self._client is None:
                self._client = pure_admin_client(
                    self.connection, client_id=self.client_id, timeout=self.timeout
                )
            return self._client

    def _call(self, groups: list[str], call: Callable[[Any], T]) -> T:
        admin = self._admin()
        try:
            return call(admin)
        except kafka_errors.KafkaError as exc:
            # kafka-python remembers each group's coordinator and never forgets one that moved: forget them,
            # so that the next attempt asks again. The client stays: other threads may be in a call on it, and
            # it reconnects by itself.
            cached = admin._manager.cluster._coordinators
            for group in groups:
                cached.pop((CoordinatorType.GROUP, group), None)
            raise _as_kafka_exception(exc) from exc

    def fetch(self, groups: list[str]) -> dict[str, dict[Partition, int]]:
        """Each group's committed offsets (partitions without a commit are left out); blocks."""
        if not groups:
            return {}
        found = self._call(groups, lambda admin: admin.list_group_offsets(dict.fromkeys(groups)))
        return {
            group: {
                (tp.topic, tp.partition): meta.offset
                for tp, meta in found.get(group, {}).items()
                if meta.offset is not None and meta.offset >= 0
            }
            for group in groups
        }

    def describe(self, groups: list[str]) -> dict[str, tuple[str, int] | None]:
        """Each group's state and member count; ("DEAD", 0) for none. None for a group of the consumer
        protocol (KIP-848): DescribeGroups answers only classic groups, ConsumerGroupDescribe those."""

        def describe(admin: Any) -> dict[str, tuple[str, int] | None]:
            out: dict[str, tuple[str, int] | None] = {}
            for group, found in admin.describe_groups(groups).items():
                error = found.get("error")
                if error and _error_named(error) is kafka_errors.GroupIdNotFoundError:
                    out[group] = None if "not a classic group" in error else ("DEAD", 0)
                elif error:
                    raise _error_named(error)(error)
                else:
                    state = str(found.get("group_state") or "")
                    out[group] = (_GROUP_STATES.get(state, state.upper()), len(found.get("members") or []))
            return out

        return self._call(groups, describe) if groups else {}

    def commit(self, group: str, offsets: Mapping[Partition, int]) -> None:
        """Commit offsets for a group without members (a new one)."""
        request = {
            PureTopicPartition(t, p): OffsetAndMetadata(offset, "", -1) for (t, p), offset in offsets.items()
        }

        def commit(admin: Any) -> None:
            for tp, error in admin.alter_group_offsets(group, request).items():
                if error is not kafka_errors.NoError:
                    raise error(f"committing {tp.topic}[{tp.partition}] of group {group}")

        self._call([group], commit)

    def delete(self, group: str) -> bool:
        """Delete a group; False if there was none."""

        def delete(admin: Any) -> bool:
            outcome = admin.delete_groups([group]).get(group, "OK")
            if outcome == "OK":
                return True
            if outcome == "GroupIdNotFoundError":
                return False
            raise _error_named(outcome)(f"deleting group {group}")

        return self._call([group], delete)

    def close(self) -> None:
        """Close the client (its calls in flight fail) and stop its IO thread; idempotent."""
        with self._lock:
            admin, self._client, self._closed = self._client, None, True
        self._pool.shutdown(wait=False)
        if admin is not None:
            admin.close()


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
        # kafka-python's IO thread holds its client: an adapter dropped without close() must still stop it.
        weakref.finalize(self, self._groups.close)

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
                description = await _wait(future, self.timeout)
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
            entries = await _wait(future, self.timeout)
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
            await _wait(self._admin.create_topics([new], request_timeout=self.timeout)[name], self.timeout)
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
            await _wait(futures[name], self.timeout)
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
            await _wait(futures[name], self.timeout)
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
            await _wait(future, self.timeout)

    @retried
    async def delete_records(self, before: Mapping[Partition, int]) -> dict[Partition, int]:
        """Move the log start (tests and retention emergencies); returns the new low watermarks."""
        tps = [TopicPartition(t, p, o) for (t, p), o in before.items()]
        futures = self._admin.delete_records(tps, request_timeout=self.timeout)
        return {
            (tp.topic, tp.partition): (await _wait(f, self.timeout)).low_watermark
            for tp, f in futures.items()
        }

    # -- offsets --------------------------------------------------------------------------------------

    @retried
    async def _list_offsets(
        self, specs: Mapping[Partition, OffsetSpec], *, read_committed: bool = True
    ) -> dict[Partition, int]:
        if not specs:
            return {}
        # Built, sent and awaited on one of the cluster's own worker threads. One ListOffsets request answers
        # every partition, but at 10,000 partitions building it and its futures takes most of a second of
        # CPU, which the event loop (every controller, the health endpoint) must not wait out; and the lag
        # poll must not queue behind a thousand controllers' Kubernetes calls in the default pool.
        return await self._groups.run(self._list_offsets_blocking, specs, read_committed)

    def _list_offsets_blocking(
        self, specs: Mapping[Partition, OffsetSpec], read_committed: bool
    ) -> dict[Partition, int]:
        admin = self._admin
        if admin is None:
            raise KafkaException(KafkaError(KafkaError._DESTROY, "the Kafka adapter is closed"))
        request = {TopicPartition(t, p): spec for (t, p), spec in specs.items()}
        isolation = IsolationLevel.READ_COMMITTED if read_committed else IsolationLevel.READ_UNCOMMITTED
        futures = admin.list_offsets(request, isolation_level=isolation, request_timeout=self.timeout)
        _, late = wait_futures(list(futures.values()), self.timeout)
        if late:
            # Never wait for ever on a future librdkafka has not resolved (a destroyed client's never is).
            raise KafkaException(
                KafkaError(
                    KafkaError._TIMED_OUT, f"no answer for {len(late)} partition(s) in {self.timeout}s"
                )
            )
        return {(k.topic, k.partition): f.result(timeout=0).offset for k, f in futures.items()}

    async def log_start_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return await self._list_offsets(dict.fromkeys(partitions, OffsetSpec.earliest()))

    async def end_offsets(
        self, partitions: Iterable[Partition], *, read_committed: bool = True
    ) -> dict[Partition, int]:
        """The last stable offset under read_committed (what a transactional reader reaches), else the HW."""
        return await self._list_offsets(
            dict.fromkeys(partitions, OffsetSpec.latest()), read_committed=read_committed
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
                desc = await _wait(future, self.timeout)
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

    def _record_offsets_blocking(
        self, ranges: Mapping[Partition, tuple[int, int]], timeout: float
    ) -> dict[Partition, list[int]]:
        """One consumer reads every range at once (one fetch session for all partitions, not a consumer
        per range): 10,000 small ranges cost about what one does."""
        found: dict[Partition, list[int]] = {p: [] for p in ranges}
        todo = {p: (start, end) for p, (start, end) in ranges.items() if end > start}
        if not todo:
            return found
        consumer = self._consumer()
        try:
            consumer.assign([TopicPartition(t, p, start) for (t, p), (start, _) in todo.items()])
            deadline = time.monotonic() + timeout
            while todo:
                if time.monotonic() >= deadline:
                    raise KafkaAdapterError(
                        f"counting records of {len(todo)} partition(s) ({_names(sorted(todo)[:3])}) timed out"
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

    async def record_offsets(
        self, ranges: Mapping[Partition, tuple[int, int]], timeout: float = 10.0
    ) -> dict[Partition, list[int]]:
        """Offsets of the data records a read_committed reader gets in [start, end) per partition."""
        return await self._groups.run(self._record_offsets_blocking, ranges, timeout)

    async def count_records(
        self, ranges: Mapping[Partition, tuple[int, int]], timeout: float = 10.0
    ) -> dict[Partition, int]:
        """Data records a read_committed reader gets in [start, end) per partition: transaction markers and
        aborted records do not count."""
        found = await self.record_offsets(ranges, timeout)
        return {p: len(offsets) for p, offsets in found.items()}

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
        return await self._groups.run(self._timestamps_blocking, offsets, timeout)

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


def _names(parts: Iterable[Partition]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in parts)
