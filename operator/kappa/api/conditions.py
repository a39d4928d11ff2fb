"""The one place that computes conditions: kstatus Ready/Reconciling/Stalled plus domain conditions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: bool | None  # None is "Unknown"
    reason: str
    message: str = ""


def _status(value: bool | None) -> str:
    return "Unknown" if value is None else ("True" if value else "False")


def progressing(reason: str, message: str) -> list[ConditionUpdate]:
    """Work is under way: kstatus InProgress."""
    return [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(RECONCILING, True, reason, message),
        ConditionUpdate(STALLED, False, reason, message),
    ]


def ready(reason: str, message: str) -> list[ConditionUpdate]:
    """Desired state reached: kstatus Current."""
    return [
        ConditionUpdate(READY, True, reason, message),
        ConditionUpdate(RECONCILING, False, reason, message),
        ConditionUpdate(STALLED, False, reason, message),
    ]


def stalled(reason: str, message: str) -> list[ConditionUpdate]:
    """Cannot progress without a change from a human: kstatus Failed."""
    return [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(RECONCILING, False, reason, message),
        ConditionUpdate(STALLED, True, reason, message),
    ]


def _rfc3339(at: datetime) -> str:
    """metav1.Time: UTC, whole seconds."""
    return at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    current: Iterable[dict[str, Any]] | None,
    updates: Iterable[ConditionUpdate],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Apply updates to a condition list; lastTransitionTime moves only when status changes."""
    by_type: dict[str, dict[str, Any]] = {c["type"]: dict(c) for c in (current or []) if "type" in c}
    for update in updates:
        old = by_type.get(update.type)
        status = _status(update.status)
        changed = old is None or old.get("status") != status
        by_type[update.type] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message[:4096],
            "observedGeneration": generation,
            "lastTransitionTime": (
                _rfc3339(now) if changed else old["lastTransitionTime"]  # type: ignore[index]
            ),
        }
    order = {READY: 0, RECONCILING: 1, STALLED: 2}
    return sorted(by_type.values(), key=lambda c: (order.get(c["type"], 3), c["type"]))


def condition(conditions: Iterable[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)
