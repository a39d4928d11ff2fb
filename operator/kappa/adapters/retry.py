"""The one retry policy of the adapters, for short retries of idempotent calls inside one look: a Kafka admin
or quota request that failed retriably, a view switch that met a lock or a compare-and-swap conflict.

The backoff is the same everywhere: 0.1 s, doubling, at most 2 s between tries (`WAIT`). Each caller says only
what is worth another try and for how long (a number of tries, or a time budget that the next wait must fit
in). The last failure is raised as it is, for the caller to turn into its own error. Retries across looks
(an outage, a refused spec) are not this module's: the controllers' schedule looks again, and the conditions
say why.

tenacity does the work; this module only fixes the policy, so that no adapter writes its own loop.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    stop_never,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential

WAIT = wait_exponential(multiplier=0.1, max=2.0)
"""0.1 s, 0.2 s, 0.4 s … 2 s, 2 s: the wait before the 2nd, 3rd, 4th … try."""


def _stop(tries: int | None, within: float | None) -> stop_base:
    stops: list[stop_base] = []
    if tries is not None:
        stops.append(stop_after_attempt(tries))
    if within is not None:
        stops.append(stop_before_delay(within))
    return stop_any(*stops) if stops else stop_never


def retrying(
    worth_retrying: Callable[[BaseException], bool],
    *,
    tries: int | None = None,
    within: float | None = None,
) -> AsyncRetrying:
    """`async for attempt in retrying(...): with attempt: ...`, or `await retrying(...)(fn, *args)`.

    `tries`: at most this many tries; `within`: no wait that would end past this many seconds from the first
    try. Exceptions `worth_retrying` rejects are raised at once."""
    return AsyncRetrying(
        retry=retry_if_exception(worth_retrying), stop=_stop(tries, within), wait=WAIT, reraise=True
    )


def retrying_blocking(
    worth_retrying: Callable[[BaseException], bool],
    *,
    tries: int | None = None,
    within: float | None = None,
) -> Retrying:
    """The same policy for code that already runs in a worker thread (it sleeps that thread)."""
    return Retrying(
        retry=retry_if_exception(worth_retrying), stop=_stop(tries, within), wait=WAIT, reraise=True
    )


__all__ = ["WAIT", "retrying", "retrying_blocking"]
