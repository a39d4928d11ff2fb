"""Kopf wiring for replayruns: a level-triggered reconcile on create, resume and spec change."""

from __future__ import annotations

from typing import Any

import kopf

from kappa.api.base import GROUP, VERSION
from kappa.controllers.status import apply_decision
from kappa.machines.intake import intake_replayrun


@kopf.on.resume(GROUP, VERSION, "replayruns")
@kopf.on.create(GROUP, VERSION, "replayruns")
@kopf.on.update(GROUP, VERSION, "replayruns", field="spec")
async def reconcile_replayrun(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    generation = int(meta.get("generation") or 0)
    decision = intake_replayrun(dict(spec), dict(status), generation)
    apply_decision(decision, body=body, patch=patch, generation=generation)
    logger.info("reconciled generation %s", generation)
