"""Writing status: one place that merges conditions, stamps observedGeneration, patches the status
subresource and posts events. Intent goes first: callers write status before they touch any child."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import kopf

from kappa.adapters.kube import Kube
from kappa.api.base import API_VERSION
from kappa.api.conditions import ConditionUpdate, merge_conditions
from kappa.machines.decision import Event


def ts(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def once(status: dict[str, Any], reason: str, message: str) -> list[Event]:
    """A Warning event when a stall begins, not on every poll while it lasts."""
    current: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Stalled"), {}
    )
    if current.get("status") == "True" and current.get("reason") == reason:
        return []
    return [Event("Warning", reason, message)]


def post_events(obj: dict[str, Any], events: list[Event]) -> None:
    for event in events:
        kopf.event(
            kopf.Body(cast(kopf.RawBody, obj)), type=event.type, reason=event.reason, message=event.message
        )


async def write_status(
    kube: Kube,
    kind: str,
    obj: dict[str, Any],
    patch: dict[str, Any],
    conditions: list[ConditionUpdate],
    events: list[Event],
    generation: int,
    now: datetime,
) -> None:
    status = dict(patch)
    if conditions:
        status["conditions"] = merge_conditions(
            (obj.get("status") or {}).get("conditions"), conditions, generation=generation, now=now
        )
    status["observedGeneration"] = generation
    meta = obj["metadata"]
    await kube.patch_status(API_VERSION, kind, meta["namespace"], meta["name"], status)
    # What was written is what the next step of this reconcile sees.
    obj.setdefault("status", {}).update(status)
    post_events(obj, events)


def requested(obj: dict[str, Any], annotation: str, key: str) -> str | None:
    """A new imperative request: the annotation's id, unless status already echoes it as handled."""
    asked = (obj["metadata"].get("annotations") or {}).get(annotation)
    handled = ((obj.get("status") or {}).get("handledRequests") or {}).get(key)
    return asked if asked and asked != handled else None
