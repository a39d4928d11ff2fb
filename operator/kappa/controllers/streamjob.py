"""Kopf wiring for streamjobs: a level-triggered reconcile on create, resume and spec change."""

from __future__ import annotations

from typing import Any

import kopf

from kappa.api.base import GROUP, VERSION
from kappa.controllers.status import apply_decision
from kappa.machines.intake import intake_streamjob
from kappa.render.names import consumer_group


@kopf.on.resume(GROUP, VERSION, "streamjobs")
@kopf.on.create(GROUP, VERSION, "streamjobs")
@kopf.on.update(GROUP, VERSION, "streamjobs", field="spec")
async def reconcile_streamjob(
    body: kopf.Body,
    memo: kopf.Memo,
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
    _track_lag(memo, meta, spec)
    logger.info("reconciled generation %s", generation)


def _track_lag(memo: kopf.Memo, meta: kopf.Meta, spec: kopf.Spec) -> None:
    """The active version's group is watched by the operator-wide lag poll (gauges per partition)."""
    tracking = getattr(memo, "lag", None)
    kafka = spec.get("source", {}).get("kafka", {})
    bootstrap = kafka.get("bootstrapServers")
    if tracking is None or not bootstrap or not spec.get("version"):
        return  # Strimzi clusterRef: resolved from the Kafka resource once the StreamJob controller lands
    namespace, name, version = str(meta["namespace"]), str(meta["name"]), str(spec["version"])
    labels = {"namespace": namespace, "job": name, "version": version}
    tracking.track(
        bootstrap, consumer_group(namespace, name, version), list(spec["source"]["topics"]), labels
    )


@kopf.on.delete(GROUP, VERSION, "streamjobs", optional=True)
async def forget_streamjob(memo: kopf.Memo, meta: kopf.Meta, spec: kopf.Spec, **_: Any) -> None:
    """Best effort, without a finalizer: stop polling the deleted job's group (its offsets stay in Kafka)."""
    tracking = getattr(memo, "lag", None)
    if tracking is not None and spec.get("version"):
        tracking.untrack(consumer_group(str(meta["namespace"]), str(meta["name"]), str(spec["version"])))
