"""Applies a Decision: status merge patch with conditions, then Kubernetes events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from kappa.api.conditions import merge_conditions
from kappa.machines.decision import Decision


def apply_decision(
    decision: Decision,
    *,
    body: kopf.Body,
    patch: kopf.Patch,
    generation: int,
    now: datetime | None = None,
) -> None:
    now = now or datetime.now(UTC)
    for key, value in decision.status.items():
        patch.status[key] = value
    if decision.conditions:
        current: list[dict[str, Any]] = list(body.get("status", {}).get("conditions") or [])
        patch.status["conditions"] = merge_conditions(
            current, decision.conditions, generation=generation, now=now
        )
        # Even a Stalled decision reflects this generation.
        patch.status["observedGeneration"] = generation
    for event in decision.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
