"""A StreamJob's savepoint history stays bounded (machines/retention.py decides): an entry beyond the bound is
first marked Disposing in status (the intent), then disposed of through the runtime, and only then forgotten,
with one event per reconcile that disposed of any. KAPPA_SAVEPOINT_HISTORY sets the bound (default 24; the
CRD admits 32 entries, the rest is room for protected entries and disposals under way)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from kappa.adapters.job_runtime.seam import JobRuntime, RuntimeUnavailable
from kappa.api.streamjob_status import SavepointRecord
from kappa.machines import retention, upgrade
from kappa.machines.decision import Event
from kappa.machines.promotion import RunSeen
from kappa.render import names

SAVEPOINT_HISTORY = int(os.environ.get("KAPPA_SAVEPOINT_HISTORY", retention.DEFAULT_SAVEPOINT_HISTORY))


def plan(
    entries: list[SavepointRecord],
    state: upgrade.UpgradeState,
    deployed: list[str],
    runs: list[RunSeen],
    now: datetime,
) -> tuple[retention.SavepointPlan, list[Event]]:
    """status.savepoints as it is to be written (decided disposals marked), and what to say of it."""
    # A run within its window may switch back to the version it replaced, from that version's savepoint.
    rollback = [r.from_version for r in runs if r.from_version and (r.retire_at is None or now < r.retire_at)]
    protected = retention.protected_savepoints(
        entries,
        upgrade_savepoint=state.savepoint,
        deployed=[*deployed, *(v for v in (state.active, state.target) if v), *rollback],
        previous=state.previous,
    )
    plan = retention.plan_savepoints(entries, keep=SAVEPOINT_HISTORY, protected=protected)
    events = []
    if plan.forgotten:
        paths = ", ".join(f"{e.version} {e.path}" for e in plan.forgotten)
        events.append(
            Event(
                "Warning",
                "SavepointsForgotten",
                f"status.savepoints is full ({retention.MAX_SAVEPOINTS}) while disposals wait: forgotten "
                f"undisposed: {paths}"[:1024],
            )
        )
    return plan, events


async def dispose(
    runtime: JobRuntime,
    obj: dict[str, Any],
    plan: retention.SavepointPlan,
    active: str | None,
) -> tuple[list[SavepointRecord], list[Event]] | None:
    """Dispose of what the plan marked, through the active version's deployment. What is done is forgotten:
    status.savepoints without it, and what to say, for the caller to write; None when nothing is done."""
    if not plan.dispose or not active:
        return None
    meta = obj["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    done: dict[str, str] = {}
    for entry in plan.dispose:
        try:
            result = await runtime.dispose_savepoint(
                namespace, names.deployment_name(name, active), entry.path
            )
        except RuntimeUnavailable:
            return None  # said by the reconcile's own outage handling; retried at the next look
        if result != "pending":
            done[entry.path] = result
    if not done:
        return None
    kept = [e for e in plan.kept if e.path not in done]
    disposed = [e for e in plan.dispose if done.get(e.path) == "disposed"]
    undisposable = [e for e in plan.dispose if done.get(e.path) == "unsupported"]
    events = []
    if disposed:
        paths = ", ".join(f"{e.version} {e.path}" for e in disposed)
        message = f"disposed of savepoints beyond the history of {SAVEPOINT_HISTORY}: {paths}"
        events.append(Event("Normal", "SavepointsDisposed", message[:1024]))
    if undisposable:
        paths = ", ".join(f"{e.version} {e.path}" for e in undisposable)
        message = (
            f"the {runtime.name} runtime cannot dispose of savepoints here; forgotten, remove them by "
            f"hand: {paths}"
        )
        events.append(Event("Warning", "SavepointsNotDisposed", message[:1024]))
    return kept, events
