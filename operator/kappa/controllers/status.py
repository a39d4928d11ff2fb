"""Writing status: one place that merges conditions, stamps observedGeneration, patches the status
subresource and posts events. Intent goes first: callers write status before they touch any child.

Events are posted as series (adapters/events.py): a Warning repeated with the same reason and message on the
same object is one Event whose count grows, not a new Event per poll. Each is also one log line, the Warnings
once per series."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from kappa.adapters.events import EventRecorder
from kappa.adapters.kube import Kube, NamespaceTerminating, load_api_client
from kappa.api.base import API_VERSION, CommonStatus, apply_merge_patch, merge_patch_changes
from kappa.api.conditions import ConditionUpdate, merge_conditions, stall_reason
from kappa.machines.decision import Event

_terminating: dict[str, float] = {}


@contextlib.contextmanager
def unless_terminating() -> Iterator[None]:
    """A namespace being deleted refuses anything new in it, and takes what is in it along: a reconcile that
    meets that refusal stops there, and it is said once per namespace, not once per retry with a traceback."""
    try:
        yield
    except NamespaceTerminating as exc:
        now = time.monotonic()
        if now - _terminating.get(exc.namespace, -RELOG_AFTER) >= RELOG_AFTER:
            logging.getLogger(__name__).info("%s: no more changes there", exc)
        if len(_terminating) > 4096:
            _terminating.clear()
        _terminating[exc.namespace] = now


def ts(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def once(status: CommonStatus, reason: str, message: str) -> list[Event]:
    """A Warning event when a stall begins, not on every poll while it lasts."""
    return [] if stall_reason(status.conditions) == reason else [Event("Warning", reason, message)]


_posting: set[asyncio.Task[None]] = set()


@functools.cache
def _warnings() -> EventRecorder:
    """One recorder for the process: the series are remembered across reconciles."""
    return EventRecorder(load_api_client())


log = logging.getLogger("kappa.events")
_logged: dict[tuple[str, str, str], float] = {}
RELOG_AFTER = 600.0  # seconds: a Warning still true after this is said again, once


def _log(obj: dict[str, Any], event: Event, now: float) -> None:
    """One log line per state change: every transition is an event, and a Warning repeated on every poll is
    logged when it starts (and again after RELOG_AFTER), as its event series is counted, not reposted."""
    meta = obj.get("metadata") or {}
    where = f"{obj.get('kind', '')} {meta.get('namespace')}/{meta.get('name')}"
    if event.type == "Warning":
        key = (str(meta.get("uid")), event.reason, event.message)
        if now - _logged.get(key, -RELOG_AFTER) < RELOG_AFTER:
            return
        if len(_logged) > 4096:
            _logged.clear()
        _logged[key] = now
        log.warning("%s: %s: %s", where, event.reason, event.message)
    else:
        log.info("%s: %s: %s", where, event.reason, event.message)


def post_events(obj: dict[str, Any], events: list[Event]) -> None:
    """Post in the background, like kopf.event: a reconcile never waits for its events."""
    for event in events:
        _log(obj, event, time.monotonic())
        # Through the recorder, not kopf.event: that needs a Kopf handler's context, which a background task
        # such as the views' resync does not have (its events were lost).
        if _in_event_loop():
            task = asyncio.create_task(
                _warnings().record(obj, event.type, event.reason, event.message, time.time())
            )
            _posting.add(task)  # a task nobody holds may be collected before it runs
            task.add_done_callback(_posting.discard)
            continue
        kopf.event(
            kopf.Body(cast(kopf.RawBody, obj)), type=event.type, reason=event.reason, message=event.message
        )


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def write_status(
    kube: Kube,
    kind: str,
    obj: dict[str, Any],
    patch: dict[str, Any],
    conditions: list[ConditionUpdate],
    events: list[Event],
    generation: int,
    now: datetime,
) -> dict[str, Any] | None:
    """The one writer of status: `patch` (a JSON merge patch, camelCase) with the conditions merged into the
    typed ones the object holds and observedGeneration stamped; sent only when it changes something, then
    applied to `obj` so that the rest of the look sees what was written. Returns the object as the API
    server returned it after the write, or None when nothing was sent."""
    stored: dict[str, Any] = obj.setdefault("status", {})  # as the API server returned it
    status = dict(patch)
    if conditions:
        current = CommonStatus.model_validate(stored).conditions
        status["conditions"] = merge_conditions(current, conditions, generation=generation, now=now)
    status["observedGeneration"] = generation
    meta = obj["metadata"]
    written = None
    if merge_patch_changes(stored, status):  # at rest a look writes nothing
        written = await kube.patch_status(API_VERSION, kind, meta["namespace"], meta["name"], status)
    # What was written is what the next step of this reconcile sees.
    apply_merge_patch(stored, status)
    post_events(obj, events)
    return written


def requested(obj: dict[str, Any], annotation: str, key: str) -> str | None:
    """A new imperative request: the annotation's id, unless status already echoes it as handled."""
    asked = (obj["metadata"].get("annotations") or {}).get(annotation)
    handled_requests = CommonStatus.of(obj).handled_requests
    handled = getattr(handled_requests, key) if handled_requests else None
    return asked if asked and asked != handled else None
