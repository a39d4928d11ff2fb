"""What a state machine returns: the next status, the conditions, the events and when to look again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kappa.api.conditions import ConditionUpdate


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: dict[str, Any] = field(default_factory=dict)
    """Status fields to merge-patch (camelCase, as on the wire), conditions excluded."""
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
