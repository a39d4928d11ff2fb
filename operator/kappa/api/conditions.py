"""The one place that computes and reads conditions: kstatus Ready/Reconciling/Stalled plus domain conditions.
Machines say what holds (`ConditionUpdate`: `progressing`, `ready`, `stalled`); `merge_conditions` applies
that to the typed conditions a status holds (api/base.py `Condition`) and gives the list to write;
`condition`, `holds` and `stall_reason` read them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kappa.api.base import Condition, ConditionStatus

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: bool | None  # None is "Unknown"
    reason: str
    message: str = ""


def _status(value: bool | None) -> ConditionStatus:
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


def _wire(c: Condition) -> dict[str, Any]:
    return {
        "type": c.type,
        "status": c.status,
        "reason": c.reason,
        "message": c.message,
        "observedGeneration": c.observed_generation,
        "lastTransitionTime": _rfc3339(c.last_transition_time),
    }


def merge_conditions(
    current: Iterable[Condition | dict[str, Any]] | None,
    updates: Iterable[ConditionUpdate],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Apply updates to a condition list (typed, or as written before): the list to write, ordered Ready,
    Reconciling, Stalled, then domain conditions by type. lastTransitionTime moves only when status
    changes."""
    typed = [c if isinstance(c, Condition) else Condition.model_validate(c) for c in current or []]
    by_type: dict[str, Condition] = {c.type: c for c in typed}
    for update in updates:
        old = by_type.get(update.type)
        status = _status(update.status)
        changed = old is None or old.status != status
        by_type[update.type] = Condition(
            type=update.type,
            status=status,
            reason=update.reason,
            message=update.message[:4096],
            observed_generation=generation,
            last_transition_time=now if changed or old is None else old.last_transition_time,
        )
    order = {READY: 0, RECONCILING: 1, STALLED: 2}
    return [_wire(c) for c in sorted(by_type.values(), key=lambda c: (order.get(c.type, 3), c.type))]


def condition(conditions: Iterable[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or [] if c.type == type_), None)


def holds(conditions: Iterable[Condition] | None, type_: str) -> bool:
    """Whether the condition of this type is there and True."""
    found = condition(conditions, type_)
    return found is not None and found.status == "True"


def stall_reason(conditions: Iterable[Condition] | None) -> str | None:
    """The reason of the Stalled condition while it holds (status True); None otherwise."""
    found = condition(conditions, STALLED)
    return found.reason if found is not None and found.status == "True" else None
