"""Kopf wiring for streamjobs: a level-triggered reconcile on create, resume and spec change."""

from __future__ import annotations

from typing import Any

import kopf

from kappa.api.base import GROUP, VERSION
from kappa.controllers.status import apply_decision
from kappa.machines.intake import intake_streamjob


@kopf.on.resume(GROUP, VERSION, "streamjobs")
@kopf.on.create(GROUP, VERSION, "streamjobs")
@kopf.on.update(GROUP, VERSION, "streamjobs", field="spec")
async def reconcile_streamjob(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    generation = int(meta.get("generation") or 0)
    decision = intake_streamjob(dict(spec), dict(status), generation)
    apply_decision(decision, body=body, patch=patch, generation=generation)
    logger.info("reconciled generation %s", generation)
