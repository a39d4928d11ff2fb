"""What every kind's looks share: the one reconciler of the operator on Kopf's memo, one lock per object
around each look, a look the schedule asked for (its failures logged when they change), and the namespace and
name of the object a look loaded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

import kopf

from kappa.adapters import metrics
from kappa.controllers.status import unless_terminating

T = TypeVar("T")

Locks = dict[tuple[str, str], asyncio.Lock]
"""One lock per (namespace, name): two looks at one object never overlap."""


def one_per_operator(memo: kopf.Memo, attribute: str, build: Callable[[], T]) -> T:
    """What the operator keeps on Kopf's memo under `attribute`, built by `build` on first use. Built from a
    startup handler, it is on the operator's memo, of which Kopf gives each object a shallow copy: one
    reconciler (one API client, one lock table) serves every object; built first from a handler, it would
    live in that object's copy, one per object."""
    if not hasattr(memo, attribute):
        setattr(memo, attribute, build())
    return cast(T, getattr(memo, attribute))


async def look_locked(
    locks: Locks, kind: str, namespace: str, name: str, look: Callable[[str, str], Awaitable[T]]
) -> T | None:
    """One look at an object, under its lock, counted in the reconcile metrics: what the look returned, or
    None when its namespace is being deleted (said once, controllers/status.py `unless_terminating`)."""
    found: T | None = None
    async with locks.setdefault((namespace, name), asyncio.Lock()):
        with metrics.reconciling(kind), unless_terminating():
            found = await look(namespace, name)
    return found


_failing: dict[tuple[str, str, str], str] = {}
"""(kind, namespace, name) -> the error its last scheduled look failed with."""


async def scheduled(
    kind: str, look: Callable[[str, str], Awaitable[float]], retry: float, key: Hashable
) -> float:
    """A look the schedule (controllers/schedule.py) asked for at `key`, (namespace, name): the seconds until
    the next, or `retry` after a failure, since the schedule must outlive any one look. A failing look is
    logged when its error changes, not at each retry, and once when it works again."""
    namespace, name = cast(tuple[str, str], key)
    log = logging.getLogger(f"kappa.{kind.lower()}")
    try:
        following = await look(namespace, name)
    except Exception as exc:
        if _failing.get((kind, namespace, name)) != str(exc):
            log.exception("%s %s/%s: a look failed; retrying every %.0fs", kind, namespace, name, retry)
        _failing[(kind, namespace, name)] = str(exc)
        return retry
    if _failing.pop((kind, namespace, name), None) is not None:
        log.info("%s %s/%s: looking at it works again", kind, namespace, name)
    return following


def forget(kind: str, namespace: str, name: str) -> None:
    """An object deleted: no failure of its to remember."""
    _failing.pop((kind, namespace, name), None)


class OfObject:
    """The namespace and name of the object a look loaded (`obj`, as the API server returned it), for the
    dataclasses a look fills (frozen or not): declared once here, not in each."""

    obj: dict[str, Any]

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def generation(self) -> int:
        return int(self.obj["metadata"]["generation"])
