"""A replay's cutover and its rollback: where the MaterializedView points (the compare-and-swap precondition),
the cutover recorded as intent then switched, the previous version kept through spec.rollbackWindow (and its
savepoint, for a rollback), and a rollback's switch back, made sure of after a crash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kappa.adapters import metrics
from kappa.adapters.alias import AliasError, BackendUnavailable
from kappa.adapters.job_runtime.seam import JobRuntime
from kappa.api.base import API_VERSION
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.replayrun import CutoverRecord, ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.cluster import ViewUnavailable, open_view
from kappa.controllers.replayrun.context import Context, Services, replaced_version
from kappa.controllers.status import ts
from kappa.machines import replay
from kappa.machines.fko import deployment_view
from kappa.render import names


async def alias_seen(services: Services, ctx: Context, state: replay.ReplayState) -> dict[str, Any]:
    """The version the view serves now, and the one the operator recorded as active."""
    assert ctx.view_spec is not None
    believed = ctx.view_active
    try:
        view = await open_view(services.kube, ctx.namespace, ctx.view_spec, services.admin(ctx))
        target = await view.target()
    except BackendUnavailable:
        # Unread is not "points elsewhere": outside Observing (where the target only tells whether an
        # abort may still undo a cutover) the reconcile reports the outage and waits for an answer.
        if state.phase != "Observing":
            raise
        return {"expected_target": believed}
    except (ViewUnavailable, AliasError):
        return {"expected_target": believed}
    candidates = [ctx.run.version, state.cutover_from, state.cutover_to, believed]
    return {"alias_target": ctx.version_of(target, candidates), "expected_target": believed}


async def previous_seen(runtime: JobRuntime, ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """In the rollback window: whether the replaced version's deployment is still there (a rollback resumes
    it), and its savepoint, recorded as status.cutover.previousSavepoint once FKO reports it."""
    status = ctx.status
    replaced = replaced_version(status)
    if not replaced or status.cutover is None:
        return {}, {}
    fd = await runtime.get(ctx.namespace, names.deployment_name(ctx.job_name, replaced))
    savepoint = deployment_view(fd).upgrade_savepoint_path if fd else None
    recorded: dict[str, Any] = {}
    if savepoint and status.cutover.previous_savepoint != savepoint:
        recorded["cutover"] = status.cutover.model_copy(update={"previous_savepoint": savepoint}).wire()
    return {"previous_exists": fd is not None}, recorded


def cutover_record(ctx: Context, nxt: replay.ReplayState, before: str) -> dict[str, Any] | None:
    """status.cutover: the intent, written before the switch; the time, once the switch is seen done."""
    if nxt.phase == "CuttingOver" and before != "CuttingOver":
        intent = CutoverRecord(
            view=ctx.view_name,
            from_version=nxt.cutover_from,
            replaced_version=ctx.job_status.active_version,
            to_version=nxt.cutover_to,
            requested_at=ts(ctx.now),
        )
        return intent.given()
    if nxt.phase == "Observing" and before == "CuttingOver":
        metrics.cutovers.labels(ctx.namespace, ctx.view_name or "").inc()
        cut = ctx.status.cutover
        return {**(cut.wire() if cut else {}), "at": ts(nxt.cut_over_at)}
    return None


async def cut_over(services: Services, ctx: Context, action: replay.CutOver) -> dict[str, Any]:
    """Switch the view (compare-and-swap on what it read before); the status patch of the switch done."""
    assert ctx.view_spec is not None
    view = await open_view(services.kube, ctx.namespace, ctx.view_spec, services.admin(ctx))
    to = ctx.physical(action.to)
    assert to is not None
    done = await view.cutover(to, expected=ctx.physical(action.expected))
    cut = ctx.status.cutover
    patch = cut.wire() if cut else {}
    if not done.already_done:
        patch["durationMs"] = done.duration_ms
    return {"cutover": patch}


async def switch_back(
    services: Services,
    obj: dict[str, Any],
    run: ReplayRunSpec,
    job_obj: dict[str, Any],
    job: StreamJobSpec,
    state: replay.ReplayState,
    now: datetime,
) -> dict[str, Any]:
    """A rollback's switch, made sure of: RolledBack is written before it (intent first), so a crash
    between the two must not leave readers on the rolled-back version. Idempotent. The status patch of the
    switch (none when there is no view to switch)."""
    view_name = ReplayRunStatus.of(obj).view or ""
    if not view_name or state.cutover_from is None or state.cutover_to is None:
        return {}
    namespace = obj["metadata"]["namespace"]
    view_obj = await services.kube.get(API_VERSION, "MaterializedView", namespace, view_name)
    if view_obj is None:
        return {}
    view_spec = MaterializedViewSpec.model_validate(view_obj["spec"])
    kafka = await services.connection_or_none(job, namespace)
    ctx = Context(obj, run, job_obj, job, kafka, view_name, view_obj, view_spec, now)
    return await cut_over(services, ctx, replay.CutOver(view_name, state.cutover_to, state.cutover_from))
