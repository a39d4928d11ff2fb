"""Warning events as series: a Warning that repeats (same object, type, reason and message) is one core/v1
Event whose `count` and `lastTimestamp` grow, not a new Event per poll.

This is what client-go's recorders do. The core/v1 EventCorrelator (tools/record/events_cache.go) patches
`count` and `lastTimestamp` of the Event it created; the events.k8s.io recorder (tools/events) writes an
isomorphic event once, starts its series at the second occurrence, then refreshes the series only
periodically and ends it after some minutes without one. `EventSeries` keeps that bookkeeping (pure, the
caller passes the time); `EventRecorder` writes through the core/v1 API, as Kopf's own events are written,
in a worker thread like every call of the official client.

The count on the API server is at most `refresh` behind the real one while a series lasts; a series with no
occurrence for `idle` ends, and the next occurrence posts a new Event.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kappa.adapters.kube import blocking, request_json

log = logging.getLogger(__name__)

COMPONENT = "kappa-operator"
MAX_MESSAGE = 1024
"""What Kopf also cuts event messages to."""

EventKey = tuple[str, str, str, str]
"""(object uid, type, reason, message): what makes two events the same, as client-go's isomorphic key."""


@dataclass(frozen=True)
class Create:
    """Post a new Event, with count 1."""


@dataclass(frozen=True)
class Update:
    """Write the series' count and last occurrence into the Event created for it."""

    name: str
    count: int
    last: float


@dataclass
class _Series:
    count: int
    last: float
    written_count: int
    written_at: float
    name: str | None = None
    """The Event's name, once its create has answered."""


class EventSeries:
    """Which write, if any, each occurrence of an event deserves.

    The first occurrence creates the Event; the second writes count 2 at once (so the repetition shows); after
    that the count is written at most every `refresh` seconds. A series not seen for `idle` seconds is over.
    At most `size` series are remembered (the least recently seen go first).
    """

    def __init__(self, *, refresh: float = 300.0, idle: float = 600.0, size: int = 4096) -> None:
        self.refresh = refresh
        self.idle = idle
        self.size = size
        self._series: OrderedDict[EventKey, _Series] = OrderedDict()

    def observe(self, key: EventKey, now: float) -> Create | Update | None:
        series = self._series.get(key)
        if series is None or now - series.last > self.idle:
            self._series[key] = _Series(count=1, last=now, written_count=1, written_at=now)
            self._series.move_to_end(key)
            while len(self._series) > self.size:
                self._series.popitem(last=False)
            return Create()
        self._series.move_to_end(key)
        series.count += 1
        series.last = now
        if series.name is None:  # the create has not answered yet: it is counted, and written later
            return None
        if series.written_count == 1 or now - series.written_at >= self.refresh:
            series.written_count, series.written_at = series.count, now
            return Update(series.name, series.count, now)
        return None

    def created(self, key: EventKey, name: str) -> Update | None:
        """The create answered with the Event's name; an Update if occurrences came in meanwhile."""
        series = self._series.get(key)
        if series is None:
            return None
        series.name = name
        if series.count > series.written_count:
            series.written_count = series.count
            return Update(name, series.count, series.last)
        return None

    def forget(self, key: EventKey) -> None:
        """A write failed (or the Event expired on the server): the next occurrence starts a new Event."""
        self._series.pop(key, None)

    def count(self, key: EventKey) -> int:
        series = self._series.get(key)
        return series.count if series else 0


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class EventRecorder:
    """Posts events of Kubernetes objects as series (see EventSeries), through core/v1."""

    def __init__(self, api_client: client.ApiClient, series: EventSeries | None = None) -> None:
        self._api = api_client
        self.series = series or EventSeries()
        self._instance = os.environ.get("HOSTNAME", COMPONENT)
        # Writes one at a time, in the order they were asked for (asyncio.Lock is FIFO).
        self._lock = asyncio.Lock()

    async def record(self, obj: dict[str, Any], type_: str, reason: str, message: str, now: float) -> None:
        meta = obj["metadata"]
        message = _message(message)
        key: EventKey = (str(meta.get("uid", "")), type_, reason, message)
        write = self.series.observe(key, now)
        if write is None:
            return
        async with self._lock:
            try:
                if isinstance(write, Create):
                    name = await blocking(self._create, obj, type_, reason, message, 1, now, now)
                    if (late := self.series.created(key, name)) is not None:
                        await self._update(obj, key, type_, reason, message, late, now)
                else:
                    await self._update(obj, key, type_, reason, message, write, now)
            except ApiException as exc:
                self.series.forget(key)
                log.warning(
                    "posting event %s on %s/%s failed: %s",
                    reason,
                    meta.get("namespace"),
                    meta["name"],
                    exc.reason,
                )

    async def _update(
        self,
        obj: dict[str, Any],
        key: EventKey,
        type_: str,
        reason: str,
        message: str,
        write: Update,
        now: float,
    ) -> None:
        try:
            await blocking(self._patch, obj["metadata"]["namespace"], write)
        except ApiException as exc:
            if exc.status != 404:
                raise
            # The API server expires events (--event-ttl, 1h by default): the series goes on in a new one.
            name = await blocking(self._create, obj, type_, reason, message, write.count, now, write.last)
            self.series.created(key, name)

    def _create(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        count: int,
        first: float,
        last: float,
    ) -> str:
        meta = obj["metadata"]
        body: dict[str, Any] = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": _time(first),
            "lastTimestamp": _time(last),
            "count": count,
        }
        created = request_json(self._api, "POST", f"/api/v1/namespaces/{meta['namespace']}/events", body)
        return str(created["metadata"]["name"])

    def _patch(self, namespace: str, write: Update) -> None:
        request_json(
            self._api,
            "PATCH",
            f"/api/v1/namespaces/{namespace}/events/{write.name}",
            {"count": write.count, "lastTimestamp": _time(write.last)},
            content_type="application/merge-patch+json",
        )


__all__ = ["Create", "EventKey", "EventRecorder", "EventSeries", "Update"]
