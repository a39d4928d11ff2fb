"""MaterializedViews: the Kopf handlers (create, update of spec, resume) and the resync loop that has every
view follow its job's runs. Each look is one `MaterializedViewReconciler.reconcile` (reconcile.py),
under one lock per view."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Hashable
from typing import Any, cast

import kopf

from kappa.adapters.kube import Kube
from kappa.api.base import GROUP, VERSION
from kappa.controllers.looks import Locks, look_locked, one_per_operator
from kappa.controllers.materializedview.reconcile import MaterializedViewReconciler

INTERVAL = float(os.environ.get("KAPPA_RECONCILE_INTERVAL", "10"))


def _reconciler(memo: kopf.Memo) -> MaterializedViewReconciler:
    return one_per_operator(memo, "views", lambda: MaterializedViewReconciler(Kube(), memo.lag))


@kopf.on.startup()
async def share_view_reconciler(memo: kopf.Memo, **indexes: Any) -> None:
    """Built on the operator's memo before any handler runs. Kopf gives each object a shallow copy of that
    memo: built there, one reconciler (one API client, one lock table) serves every MaterializedView, and the
    views' resync shares its locks; built from a handler, it would live in that object's copy, one client per
    object. It reads the jobs serving a view and their runs from the watch-fed indexes
    (controllers/watches.py), not from two LISTs of the namespace per view per resync."""
    memo.views = MaterializedViewReconciler(
        Kube(), memo.lag, indexes["streamjobs_by_view"], indexes["replayruns_by_job"]
    )
    memo.view_locks = {}  # the one lock table: every handler's copy of the memo and the resync share it


async def _locked(memo: kopf.Memo, namespace: str, name: str) -> None:
    locks: Locks = one_per_operator(memo, "view_locks", dict)
    await look_locked(locks, "MaterializedView", namespace, name, _reconciler(memo).reconcile)


@kopf.on.resume(GROUP, VERSION, "materializedviews")
@kopf.on.create(GROUP, VERSION, "materializedviews")
@kopf.on.update(GROUP, VERSION, "materializedviews", field="spec")
async def reconcile_materializedview(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    await _locked(memo, str(meta["namespace"]), str(meta["name"]))


@kopf.on.startup()
async def start_view_resync(memo: kopf.Memo, logger: kopf.Logger, **indexes: Any) -> None:
    """Views follow their job's runs every interval. A loop, not a Kopf timer: timers need a finalizer, which
    needs patch on the MaterializedView, and the operator must not be able to write a view's spec. The views
    come from a watch-fed index (controllers/watches.py): no LIST per round, and, under `kappa run -n`, only
    the watched namespaces' (a cluster-wide LIST there was refused by the namespaced Roles)."""
    views: kopf.Index[Hashable, Any] = indexes["materializedviews_by_key"]

    async def loop() -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            for key in list(views):
                namespace, name = cast(tuple[str, str], key)
                try:
                    await _locked(memo, namespace, name)
                except Exception as exc:  # the API server restarting must not end the loop
                    logger.warning("MaterializedView %s/%s: %s", namespace, name, exc)

    memo.view_resync = asyncio.create_task(loop(), name="kappa-view-resync")


@kopf.on.cleanup()
async def stop_view_resync(memo: kopf.Memo, **_: Any) -> None:
    task: asyncio.Task[None] | None = getattr(memo, "view_resync", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
