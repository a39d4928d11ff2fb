"""How one Kafka admin call is made: `await_future` waits for an admin future with a bound, so that a future
librdkafka never resolves cannot hold a handler forever; `retried` retries an admin call's transient errors (a
coordinator moving or loading, a leader election, a timeout) until the call's timeout, with the adapters' one
retry policy (adapters/retry.py), and tells the cluster's health whether it answered; `is_error` reads the
librdkafka error code of a failure."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from confluent_kafka import KafkaError, KafkaException

from kappa.adapters.retry import retrying

if TYPE_CHECKING:
    from kappa.adapters.kafka.admin import KafkaAdmin


_GRACE = 5.0
"""Seconds an admin future may take beyond its request timeout before the adapter stops waiting for it."""


async def await_future(future: Future[Any], timeout: float) -> Any:
    """The result of an admin future, waited for at most `timeout` (and a grace). librdkafka resolves a
    request's future by its request timeout; the future of a client destroyed with requests in flight may
    never be resolved, and a handler awaiting it would wait forever."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout + _GRACE)
    except TimeoutError:
        raise KafkaException(
            KafkaError(KafkaError._TIMED_OUT, f"no answer in {timeout + _GRACE:.0f}s")
        ) from None


# Errors that say "ask again shortly": a coordinator moving or loading, a leader election (and the stale
# leader epoch a client holds right after one: Kafka's InvalidMetadataException family, retriable in its Java
# client), a timeout.
_TRANSIENT = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.OFFSET_NOT_AVAILABLE,
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
    """Transient errors are retried until the call's timeout, with the adapters' one policy
    (adapters/retry.py)."""

    @functools.wraps(method)
    async def wrapper(self: KafkaAdmin, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result: T = await retrying(_transient, within=self.timeout)(method, self, *args, **kwargs)
        except KafkaException as exc:
            if is_error(exc, *_UNREACHABLE):
                self.health.observe(False, exc.args[0].str())
            raise
        self.health.observe(True)
        return result

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


def is_error(exc: BaseException, *codes: int) -> bool:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code() in codes
    return False
