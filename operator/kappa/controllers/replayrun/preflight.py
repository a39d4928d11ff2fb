"""Before a ReplayRun creates anything: the view's holder (one run per MaterializedView, an atomic claim) and
the preflight checks (the version, the view, the start and end offsets against retention, the output). The
start and target offsets and the quota plan are returned with the checks, recorded as the replay's intent."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kappa.adapters import metrics
from kappa.adapters.alias import AliasError, BackendUnavailable
from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.values import KafkaAdapterError, Partition
from kappa.api.base import API_VERSION
from kappa.api.replayrun import ReplayRunStatus
from kappa.controllers.cluster import ViewUnavailable, open_view
from kappa.controllers.replayrun.context import Context, Services, entries_of
from kappa.controllers.replayrun.quota import quota_plan
from kappa.machines import replay
from kappa.machines.preflight import (
    Check,
    ReplayPlan,
    check_start_not_in_future,
    preflight,
)
from kappa.render.replay import output_table, output_topic

log = logging.getLogger(__name__)
ACTIVE = frozenset(replay.BEFORE_CUTOVER | {"CuttingOver", "Observing"})
_PREFLIGHT_DOWN: set[tuple[str, str]] = set()
"""Runs whose preflight could not reach Kafka at the last look: said when it starts and when it ends, not at
every retry."""


async def holder(services: Services, ctx: Context) -> str | None:
    """Another run that holds the same view, or None once this run holds it. Holding is an atomic claim
    (adapters/claims.py): status alone cannot tell, since runs created together have written none yet."""
    if not ctx.view_name:
        return None
    mine = (ctx.obj["metadata"]["creationTimestamp"], ctx.name)
    for other in await services.kube.select(API_VERSION, "ReplayRun", ctx.namespace, ""):
        meta, status = other["metadata"], ReplayRunStatus.of(other)
        if meta["name"] == ctx.name or status.view != ctx.view_name:
            continue
        phase = status.phase or "Pending"
        if phase in ACTIVE - {"Pending"}:
            return str(meta["name"])
        if phase == "Pending" and (meta["creationTimestamp"], meta["name"]) < mine:
            return str(meta["name"])

    async def ended(name: str, uid: str) -> bool:
        """A claim's holder holds nothing any more: deleted, recreated under its name, or ended."""
        found = await services.kube.get(API_VERSION, "ReplayRun", ctx.namespace, name)
        if found is None or found["metadata"]["uid"] != uid:
            return True
        return ReplayRunStatus.of(found).phase in replay.FINAL

    return await services.claims.claim(ctx.namespace, ctx.view_name, ctx.obj, ended)


@dataclass(frozen=True)
class Preflight:
    checks: tuple[Check, ...] | None
    """None: could not check now (retried until the deadline)."""
    recorded: dict[str, Any] = field(default_factory=dict)
    """startOffsets, targetOffsets and throttle: the intent of the replay, recorded with the result."""


def _spec_checks(ctx: Context) -> list[Check]:
    """What the spec asks against what exists: not the active version; a live run needs a view it may cut."""
    run, checks = ctx.run, []
    if run.version == ctx.job_status.active_version:
        message = f"spec.version {run.version} is the active version"
        checks.append(Check("Version", "Error", "VersionIsActive", message))
    if not run.until.live:
        return checks
    if not ctx.view_name:
        message = (
            f"StreamJob {ctx.job_name} has no spec.output.view to cut over; use a bounded spec.until for a "
            "backfill"
        )
        checks.append(Check("View", "Error", "NoView", message))
    elif ctx.view_spec is None:
        message = f"MaterializedView {ctx.view_name} not found or invalid"
        checks.append(Check("View", "Error", "ViewNotFound", message))
    elif ctx.view_spec.active_version and ctx.view_spec.active_version != run.version:
        message = (
            f"MaterializedView {ctx.view_name} pins spec.activeVersion {ctx.view_spec.active_version}; "
            "remove the pin to cut over"
        )
        checks.append(Check("View", "Error", "ViewPinned", message))
    return checks


def _said_down(ctx: Context, exc: Exception | None) -> None:
    """An unreachable cluster is logged when it starts and when it ends."""
    key = (ctx.namespace, ctx.name)
    if exc is not None and key not in _PREFLIGHT_DOWN:
        _PREFLIGHT_DOWN.add(key)
        log.warning("ReplayRun %s/%s: preflight could not run, retrying: %s", ctx.namespace, ctx.name, exc)
    elif exc is None and key in _PREFLIGHT_DOWN:
        _PREFLIGHT_DOWN.discard(key)
        log.info("ReplayRun %s/%s: preflight reaches Kafka again", ctx.namespace, ctx.name)


async def run_preflight(services: Services, ctx: Context, admin: KafkaAdmin) -> Preflight:
    """Nothing is created before every check passes. Start and target offsets are recorded with the result."""
    run, job = ctx.run, ctx.job
    checks = _spec_checks(ctx)
    now_ms = int(ctx.now.timestamp() * 1000)
    from_ms = int(run.from_.timestamp.timestamp() * 1000) if run.from_.timestamp else None
    if from_ms is not None:
        checks.append(check_start_not_in_future(from_ms, now_ms))
    try:
        offsets = {(o.topic, o.partition): o.offset for o in run.from_.offsets} if run.from_.offsets else None
        start = await admin.resolve_start(
            job.source.topics, earliest=bool(run.from_.earliest), timestamp_ms=from_ms, offsets=offsets
        )
        facts = await admin.partition_facts(start)
        topics = await admin.describe_topics(job.source.topics)
        target = await _target_offsets(ctx, admin, list(start.offsets))
    except KafkaAdapterError as exc:
        checks.append(Check("Start", "Error", "InvalidStart", f"spec.from: {exc}"))
        return Preflight(tuple(checks))
    except Exception as exc:  # the cluster is unreachable: check again until the deadline
        _said_down(ctx, exc)
        return Preflight(None)
    _said_down(ctx, None)
    out_topic = output_topic(job, run)
    topic_exists = bool(out_topic) and await admin.topic_exists(out_topic or "")
    rate = (
        float(run.throttle.records_per_second) if run.throttle and run.throttle.records_per_second else None
    )
    end_field = "spec.until.offsets" if run.until.offsets else "spec.until.timestamp"
    plan = ReplayPlan(
        rate, out_topic, topic_exists, end=None if run.until.live else target, end_field=end_field
    )
    checks += preflight(topics, facts, plan, now_ms).checks
    metrics.set_retention_deadline(ctx.namespace, ctx.name, topics, facts)
    checks += await _output_checks(services, ctx, admin)
    if start.past_end:
        checks.append(Check("Start", "Warning", "PastEnd", start.message))
    recorded: dict[str, Any] = {
        "startOffsets": entries_of(start.offsets),
        "targetOffsets": entries_of(target),
    }
    if run.throttle:
        recorded["throttle"] = (await quota_plan(ctx)).wire()
    return Preflight(tuple(checks), recorded)


async def _output_checks(services: Services, ctx: Context, admin: KafkaAdmin) -> list[Check]:
    """A PostgreSQL view's output table must not exist yet."""
    table = output_table(ctx.job, ctx.run)
    if not (table and ctx.view_spec and ctx.view_spec.backend.type == "postgres"):
        return []
    try:
        view = await open_view(services.kube, ctx.namespace, ctx.view_spec, admin)
        if await view.exists(table):
            return [Check("OutputFree", "Error", "OutputExists", f"table {table} already exists")]
    except BackendUnavailable:
        raise  # an outage: the reconcile says so and checks again, nothing failed
    except (ViewUnavailable, AliasError) as exc:
        return [Check("View", "Error", "ViewUnavailable", str(exc))]
    return []


async def _target_offsets(ctx: Context, admin: KafkaAdmin, parts: list[Partition]) -> dict[Partition, int]:
    until = ctx.run.until
    if until.offsets:
        return {(o.topic, o.partition): o.offset for o in until.offsets}
    ends = await admin.end_offsets(parts)
    if until.timestamp:
        at = await admin.offsets_for_time(parts, int(until.timestamp.timestamp() * 1000))
        return {p: (ends[p] if o < 0 else o) for p, o in at.items()}
    return ends  # live: the head when the replay begins
