"""Kopf wiring for materializedviews: a level-triggered reconcile on create, resume and spec change."""

from __future__ import annotations

from typing import Any

import kopf

from kappa.api.base import GROUP, VERSION
from kappa.controllers.status import apply_decision
from kappa.machines.intake import intake_materializedview


@kopf.on.resume(GROUP, VERSION, "materializedviews")
@kopf.on.create(GROUP, VERSION, "materializedviews")
@kopf.on.update(GROUP, VERSION, "materializedviews", field="spec")
async def reconcile_materializedview(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    generation = int(meta.get("generation") or 0)
    decision = intake_materializedview(dict(spec), dict(status), generation)
    apply_decision(decision, body=body, patch=patch, generation=generation)
    logger.info("reconciled generation %s", generation)
