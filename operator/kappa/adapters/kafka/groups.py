"""Consumer groups through kafka-python (`GroupAdmin`): committed offsets, descriptions, offset commits
and deletions, which librdkafka's AdminClient cannot be trusted with (its docstring says why). kafka-python's
errors come out as the confluent-kafka errors the rest of the adapter handles."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import kafka.errors as kafka_errors  # type: ignore[import-untyped]
from confluent_kafka import KafkaError, KafkaException
from kafka import TopicPartition as PureTopicPartition
from kafka.protocol.metadata import CoordinatorType  # type: ignore[import-untyped]
from kafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from kappa.adapters.kafka.connection import KafkaConnection, pure_admin_client
from kappa.adapters.kafka.values import Partition

P = ParamSpec("P")
T = TypeVar("T")


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
