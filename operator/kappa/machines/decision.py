"""What every state machine returns: one generic `Decision[State, Action]`. The next state, the actions that
carry it out (each a small frozen dataclass, carried out by the table beside the controller), the conditions
and events to write, the readiness gates judged on the way, and when to look again (`requeue_after`, followed
by controllers/schedule.py through machines/cadence.py).

Each machine names its own alias: `UpgradeDecision = Decision[UpgradeState, Action]`, and so on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from kappa.api.conditions import ConditionUpdate
from kappa.machines.runtime_facts import Gate

S = TypeVar("S")
A = TypeVar("A")


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision(Generic[S, A]):
    state: S
    """The next state: what status records once the decision is written."""
    actions: list[A] = field(default_factory=list)
    """What to do after the status is written; each act is idempotent."""
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    requeue_after: float | None = None
    """Seconds until the next look, when nothing wakes the object first; None: the kind's default."""
